//! Hop-by-hop hygiene: the headers that describe one connection, not the message, go at
//! each hop, in both directions.

use http::header::{self, HeaderMap, HeaderName};

use crate::h1::head::kind_of;
use crate::h1::FieldKind;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), including the
/// names `Connection` lists. `te: trailers` stays: gRPC needs it end to end.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one look at each name is cheaper than a removal
    // (a hash and a probe) per hop-by-hop name.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let mut names: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    // `te` goes by its value, below.
    let named = headers
        .keys()
        .filter(|&name| is_hop_by_hop(name) && name != header::TE);
    names.extend(named.cloned());
    for name in names {
        headers.remove(name);
    }
    if headers
        .get(header::TE)
        .is_some_and(|te| !te.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(header::TE);
    }
}

/// Whether `name` is hop-by-hop (or `te`, whatever its value), as the own codec's
/// [`kind_of`] classifies a field: one list of names for both HTTP/1.1 paths.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        kind_of(name.as_str().as_bytes(), b""),
        FieldKind::HopByHop | FieldKind::Connection | FieldKind::TransferEncoding
    )
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn the_quick_check_knows_every_hop_by_hop_name() {
        for name in [
            "connection",
            "keep-alive",
            "proxy-connection",
            "proxy-authenticate",
            "proxy-authorization",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "http2-settings",
            "te",
        ] {
            assert!(is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
        for name in ["x-keep", "host", "content-length", "x-request-id", "b3"] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn only_hop_by_hop_headers_are_removed() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-drop"),
            ("x-drop", "1"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "x"),
            ("x-keep", "1"),
            ("host", "svc"),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        remove_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["host", "te", "x-keep"]);

        let mut plain = HeaderMap::new();
        plain.insert("x-keep", HeaderValue::from_static("1"));
        plain.insert("te", HeaderValue::from_static("gzip"));
        remove_hop_by_hop(&mut plain);
        assert_eq!(
            plain.keys().map(HeaderName::as_str).collect::<Vec<_>>(),
            ["x-keep"]
        );
    }
}
