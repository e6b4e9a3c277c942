//! The request every connection sends, encoded once before the run.

use super::error::LoadError;
use super::target::Target;

/// Splits a `-H "Name: value"` argument, checking that it cannot break the
/// request framing (a CR or LF in a value would smuggle a header or a request).
pub fn parse_header(text: &str) -> Result<(String, String), LoadError> {
    let bad = |why: &str| LoadError::InvalidConfig(format!("invalid header {text:?}: {why}"));
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| bad("expected \"Name: value\""))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(bad(
            "the name must be a token (letters, digits, !#$%&'*+-.^_`|~)",
        ));
    }
    let value = value.trim();
    if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
        return Err(bad("the value holds a control character"));
    }
    Ok((name.to_string(), value.to_string()))
}

/// Checks a method name (a token, e.g. `GET`, `POST`).
pub fn check_method(method: &str) -> Result<(), LoadError> {
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(LoadError::InvalidConfig(format!(
            "invalid method {method:?}: expected a token such as GET or POST"
        )));
    }
    Ok(())
}

/// Encodes `METHOD path HTTP/1.1`, `Host` (unless a user header replaces it),
/// the user headers and, with a body, its `Content-Length` and the body.
/// Without one no body is sent, so a method that needs one should come with
/// the user's own `Content-Length: 0`.
pub fn encode(
    method: &str,
    target: &Target,
    headers: &[(String, String)],
    body: Option<&[u8]>,
) -> Vec<u8> {
    let body_len = body.map_or(0, <[u8]>::len);
    let mut out = Vec::with_capacity(96 + target.path.len() + body_len);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        out.extend_from_slice(b"Host: ");
        out.extend_from_slice(target.host_header.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(body) = body {
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_host_and_user_headers() {
        let t = Target::parse("http://127.0.0.1:9/x?y").unwrap();
        let h = vec![parse_header("X-A: 1").unwrap()];
        assert_eq!(
            encode("GET", &t, &h, None),
            b"GET /x?y HTTP/1.1\r\nHost: 127.0.0.1:9\r\nX-A: 1\r\n\r\n"
        );
        let h = vec![parse_header("host: other").unwrap()];
        assert_eq!(
            encode("HEAD", &t, &h, None),
            b"HEAD /x?y HTTP/1.1\r\nhost: other\r\n\r\n"
        );
        assert_eq!(
            encode("POST", &t, &[], Some(b"a=1")),
            b"POST /x?y HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Length: 3\r\n\r\na=1"
        );
        assert_eq!(
            encode("POST", &t, &[], Some(b"")),
            b"POST /x?y HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Length: 0\r\n\r\n"
        );
    }

    #[test]
    fn rejects_smuggling_headers_and_methods() {
        assert!(parse_header("NoColon").is_err());
        assert!(parse_header(": v").is_err());
        assert!(parse_header("A B: v").is_err());
        assert!(parse_header("A: v\r\nB: w").is_err());
        assert!(check_method("GET").is_ok());
        assert!(check_method("G T").is_err());
        assert!(check_method("").is_err());
    }
}
