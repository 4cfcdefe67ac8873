//! Veeam's Smart Object Storage API (SOSAPI): two objects of each bucket that the store
//! answers itself. `system.xml` says what the store can do (capacity reports) and the block
//! size it prefers; `capacity.xml` says how much the bucket holds and may still hold (its
//! quota, else its tenant's, else the usable space of the nodes its residency allows).

use crate::context::Ctx;
use crate::http::{full, set, Res};
use crate::S3Error;
use http::{Response, StatusCode};

/// The folder SOSAPI names in every bucket.
const FOLDER: &str = ".system-d26a9498-cb7c-4a87-a44a-8ae204f5ba6c/";

/// Whether `key` is one of the objects the store answers itself.
pub(crate) fn is_sosapi_object(key: &str) -> bool {
    key.strip_prefix(FOLDER)
        .is_some_and(|f| f == "system.xml" || f == "capacity.xml")
}

fn system_xml() -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<SystemInfo><ProtocolVersion>\"1.0\"</ProtocolVersion>\
<ModelName>\"Coffre {}\"</ModelName><ProtocolCapabilities><CapacityInfo>true</CapacityInfo>\
<UploadSessions>false</UploadSessions><IAMSTS>false</IAMSTS></ProtocolCapabilities>\
<SystemRecommendations><S3ConcurrentTaskLimit>64</S3ConcurrentTaskLimit>\
<S3MultiObjectDeleteLimit>1000</S3MultiObjectDeleteLimit><KbBlockSize>4096</KbBlockSize>\
</SystemRecommendations></SystemInfo>",
        env!("CARGO_PKG_VERSION")
    )
}

fn capacity_xml(ctx: &Ctx, bucket: &str) -> Result<String, S3Error> {
    let c = ctx.engine().bucket_capacity(bucket)?;
    Ok(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CapacityInfo><Capacity>{}</Capacity><Available>{}</Available><Used>{}</Used></CapacityInfo>",
        c.capacity, c.available, c.used
    ))
}

/// GET or HEAD of a SOSAPI object.
pub(crate) fn get(ctx: &Ctx, bucket: &str, key: &str, head: bool) -> Result<Res, S3Error> {
    ctx.engine().bucket(bucket)?;
    let body = match key.ends_with("system.xml") {
        true => system_xml(),
        false => capacity_xml(ctx, bucket)?,
    };
    let etag = {
        use md5::Digest;
        hex::encode(md5::Md5::digest(body.as_bytes()))
    };
    let len = body.len();
    let mut r = match head {
        true => Response::new(full("")),
        false => Response::new(full(body)),
    };
    *r.status_mut() = StatusCode::OK;
    set(&mut r, "content-type", "application/xml");
    set(&mut r, "content-length", &len.to_string());
    set(&mut r, "etag", &format!("\"{etag}\""));
    set(
        &mut r,
        "last-modified",
        &httpdate::fmt_http_date(std::time::SystemTime::now()),
    );
    Ok(r)
}

/// Writes and deletes of a SOSAPI object are refused: the store answers it.
pub(crate) fn refuse_write() -> S3Error {
    S3Error::invalid_request(format!(
        "{FOLDER}system.xml and capacity.xml are answered by Coffre itself (Veeam SOSAPI) and cannot be written"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_sosapi_objects_are_virtual() {
        assert!(is_sosapi_object(
            ".system-d26a9498-cb7c-4a87-a44a-8ae204f5ba6c/system.xml"
        ));
        assert!(is_sosapi_object(
            ".system-d26a9498-cb7c-4a87-a44a-8ae204f5ba6c/capacity.xml"
        ));
        assert!(!is_sosapi_object(
            ".system-d26a9498-cb7c-4a87-a44a-8ae204f5ba6c/other.xml"
        ));
        assert!(!is_sosapi_object("system.xml"));
        let doc = crate::xml::parse(system_xml().as_bytes(), 32).unwrap();
        assert_eq!(doc.name, "SystemInfo");
        let caps = doc.child("ProtocolCapabilities").unwrap();
        assert_eq!(caps.child("CapacityInfo").unwrap().text, "true");
    }
}
