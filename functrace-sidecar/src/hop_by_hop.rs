//! Hop-by-hop hygiene: the headers that describe one connection, not the message, go at
//! each hop, in both directions.

use http::header::{self, HeaderMap, HeaderName};

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), including the
/// names `Connection` lists. `te: trailers` stays: gRPC needs it end to end.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none of them: one look at each name is cheaper than a removal
    // (a hash and a probe) per hop-by-hop name.
    if !headers.keys().any(|name| is_hop_by_hop(name.as_str())) {
        return;
    }
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
    if headers
        .get(header::TE)
        .is_some_and(|te| !te.as_bytes().eq_ignore_ascii_case(b"trailers"))
    {
        headers.remove(header::TE);
    }
}

/// Whether `name` is one of [`HOP_BY_HOP`] or `te`: one match on the text, which compiles
/// to a switch on the length and a comparison or two.
fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "http2-settings"
            | "te"
    )
}

/// The hop-by-hop names removed whatever their value (`te` goes unless it is `trailers`).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    HeaderName::from_static("http2-settings"),
];

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn the_quick_check_knows_every_hop_by_hop_name() {
        for name in HOP_BY_HOP.iter().chain([&header::TE]) {
            assert!(is_hop_by_hop(name.as_str()), "{name}");
        }
        assert!(!is_hop_by_hop("x-keep"));
        assert!(!is_hop_by_hop("host"));
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
