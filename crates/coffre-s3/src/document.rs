//! Small request documents (configurations, tag sets, Delete lists): read whole, bounded,
//! checked against the request's `Content-MD5`.

use crate::context::Ctx;
use crate::S3Error;
use base64::Engine as _;
use hyper::body::Incoming;

pub(crate) fn content_md5(ctx: &Ctx) -> Result<Option<[u8; 16]>, S3Error> {
    match ctx.h("content-md5") {
        None => Ok(None),
        Some(v) => base64::engine::general_purpose::STANDARD
            .decode(v)
            .ok()
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(Some)
            .ok_or_else(|| S3Error::invalid_digest("The Content-MD5 you specified is not valid")),
    }
}

pub(crate) fn check_md5(md5: Option<[u8; 16]>, raw: &[u8]) -> Result<(), S3Error> {
    if let Some(m) = md5 {
        let got: [u8; 16] = {
            use md5::Digest;
            md5::Md5::digest(raw).into()
        };
        if got != m {
            return Err(S3Error::bad_digest(
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    Ok(())
}

/// Checks a small body read whole against the request's `Content-MD5`, if any.
pub(crate) fn check_content_md5(ctx: &Ctx, raw: &[u8]) -> Result<(), S3Error> {
    check_md5(content_md5(ctx)?, raw)
}

/// A configuration document (CORS rules, encryption, ownership…): read whole, at most
/// `max` bytes, checked against the request's `Content-MD5`.
pub(crate) async fn read_document(ctx: &Ctx, body: Incoming, max: usize) -> Result<Vec<u8>, S3Error> {
    let (reader, _) = ctx.body(body, max as u64)?;
    let raw = reader.read_all(max).await?;
    check_content_md5(ctx, &raw)?;
    Ok(raw)
}
