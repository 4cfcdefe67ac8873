//! Response helpers shared by every handler: bodies, XML responses, headers, error documents.

use crate::S3Error;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};

pub type ResBody = BoxBody<Bytes, std::io::Error>;
pub type Res = Response<ResBody>;

pub fn full(b: impl Into<Bytes>) -> ResBody {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

pub fn empty() -> ResBody {
    full(Bytes::new())
}

/// An empty response with a status.
pub fn status(code: StatusCode) -> Res {
    let mut r = Response::new(empty());
    *r.status_mut() = code;
    r
}

pub fn xml_response(status: StatusCode, body: String) -> Res {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/xml"));
    r
}

/// Sets a header; a name or value that is not valid HTTP is skipped.
pub fn set(r: &mut Res, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_bytes(value.as_bytes()),
    ) {
        r.headers_mut().insert(n, v);
    }
}

/// The S3 error document (no body for HEAD and 304).
pub fn error_response(e: &S3Error, resource: &str, request_id: &str, head: bool) -> Res {
    let body = if head || e.status == StatusCode::NOT_MODIFIED {
        String::new()
    } else {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{}</RequestId></Error>",
            e.code,
            crate::xml::escape(&e.message),
            crate::xml::escape(resource),
            request_id
        )
    };
    let mut r = xml_response(e.status, body);
    if head {
        r.headers_mut().remove("content-type");
    }
    for (name, value) in &e.headers {
        set(&mut r, name, value);
    }
    r
}
