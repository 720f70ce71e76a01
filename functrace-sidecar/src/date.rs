//! The `Date` field's value, written on the own HTTP/1.1 path: RFC 9110 §6.6.1 has a proxy
//! add one to an answer that came without (hyper's server does the same on its path), and a
//! server's own answers carry one. Formatted at most once a second per thread.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// An IMF-fixdate's length: `Sun, 06 Nov 1994 08:49:37 GMT`.
const LEN: usize = 29;

thread_local! {
    /// The second last formatted, and its text.
    static LAST: Cell<(u64, [u8; LEN])> = const { Cell::new((u64::MAX, [0; LEN])) };
}

/// Now, as an IMF-fixdate.
pub fn now() -> [u8; LEN] {
    let now = SystemTime::now();
    let second = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    LAST.with(|last| {
        let (formatted, text) = last.get();
        if formatted == second {
            return text;
        }
        let mut text = [0; LEN];
        // Always 29 bytes from 1970 to 9999.
        text.copy_from_slice(httpdate::fmt_http_date(now).as_bytes());
        last.set((second, text));
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_an_imf_fixdate_of_this_second() {
        let text = now();
        let parsed = httpdate::parse_http_date(std::str::from_utf8(&text).unwrap()).unwrap();
        let off = SystemTime::now().duration_since(parsed).unwrap_or_default();
        assert!(off.as_secs() <= 2, "{off:?}");
        assert!(text.ends_with(b" GMT"));
        assert_eq!(now(), text);
    }
}
