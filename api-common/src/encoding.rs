//! Compressed request bodies. Only gzip is taken, and it is inflated under
//! the same limit the body has on the wire: a bomb (megabytes of zeros in
//! a few kilobytes) is refused after the limit, never inflated whole.

use crate::ApiError;
use axum::http::header::CONTENT_ENCODING;
use axum::http::HeaderMap;
use flate2::read::MultiGzDecoder;
use std::io::Read;

/// How the body was encoded for the trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Coding {
    Identity,
    Gzip,
}

/// The body's coding from its `Content-Encoding` headers; anything but
/// none, `identity` or one `gzip` is a 415 naming what was sent.
pub(crate) fn coding(headers: &HeaderMap) -> Result<Coding, ApiError> {
    let mut codings = Vec::new();
    for value in headers.get_all(CONTENT_ENCODING) {
        let value = value.to_str().map_err(|_| ApiError::UnsupportedEncoding("(not ASCII)".into()))?;
        codings.extend(value.split(',').map(|c| c.trim().to_ascii_lowercase()).filter(|c| !c.is_empty()));
    }
    codings.retain(|c| c != "identity");
    match codings.as_slice() {
        [] => Ok(Coding::Identity),
        [one] if one == "gzip" || one == "x-gzip" => Ok(Coding::Gzip),
        // Stacked codings (`gzip, gzip`) are refused too: one layer is
        // all a client needs, and each layer multiplies a bomb.
        _ => Err(ApiError::UnsupportedEncoding(codings.join(", "))),
    }
}

/// Inflates a gzip body, reading at most `limit + 1` bytes of output: one
/// byte past the limit is enough to know the body is too large.
pub(crate) fn gunzip(compressed: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut body = Vec::new();
    MultiGzDecoder::new(compressed)
        .take(cap)
        .read_to_end(&mut body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not valid gzip: {e}")))?;
    if body.len() > limit {
        return Err(ApiError::TooLarge { limit });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CONTENT_ENCODING, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn gzip_and_identity_are_taken_and_nothing_else() {
        assert_eq!(coding(&headers(&[])).unwrap(), Coding::Identity);
        assert_eq!(coding(&headers(&["identity"])).unwrap(), Coding::Identity);
        assert_eq!(coding(&headers(&["GZip"])).unwrap(), Coding::Gzip);
        assert_eq!(coding(&headers(&["x-gzip"])).unwrap(), Coding::Gzip);
        for (sent, named) in [(&["br"][..], "br"), (&["deflate"], "deflate"), (&["gzip", "gzip"], "gzip, gzip")] {
            match coding(&headers(sent)) {
                Err(ApiError::UnsupportedEncoding(name)) => assert_eq!(name, named),
                other => panic!("{sent:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn a_body_inflates_up_to_the_limit() {
        let json = br#"{"gate":"build"}"#;
        assert_eq!(gunzip(&gzip(json), json.len()).unwrap(), json);
    }

    #[test]
    fn a_bomb_stops_one_byte_past_the_limit() {
        let bomb = gzip(&vec![0; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20 * 1024, "{} bytes", bomb.len());
        assert!(matches!(gunzip(&bomb, 1024 * 1024), Err(ApiError::TooLarge { limit: 1_048_576 })));
        assert!(matches!(gunzip(&gzip(&[b' '; 101]), 100), Err(ApiError::TooLarge { .. })));
    }

    #[test]
    fn broken_gzip_is_a_bad_request() {
        let mut cut = gzip(b"{\"gate\":\"build\"}");
        cut.truncate(cut.len() - 6);
        for body in [&b"{\"not\":\"gzip\"}"[..], &cut] {
            assert!(matches!(gunzip(body, 1024), Err(ApiError::BadRequest(_))), "{body:?}");
        }
    }
}
