//! KMIP's TTLV encoding: every item is a 3-byte tag, a 1-byte type, a 4-byte big-endian length
//! and the value, padded with zeros to a multiple of 8 bytes; a structure's value is its items
//! one after the other. Decoding trusts nothing: every length is checked against what is left,
//! nesting is bounded, fixed-size types must have their size.

/// Item types (KMIP 1.4 §9.1.1.2).
mod types {
    pub const STRUCTURE: u8 = 0x01;
    pub const INTEGER: u8 = 0x02;
    pub const LONG_INTEGER: u8 = 0x03;
    pub const BIG_INTEGER: u8 = 0x04;
    pub const ENUMERATION: u8 = 0x05;
    pub const BOOLEAN: u8 = 0x06;
    pub const TEXT_STRING: u8 = 0x07;
    pub const BYTE_STRING: u8 = 0x08;
    pub const DATE_TIME: u8 = 0x09;
    pub const INTERVAL: u8 = 0x0A;
}

/// Structures nested deeper than this are refused (KMIP messages need a handful of levels).
const MAX_DEPTH: usize = 16;
/// The largest message read from a server.
pub const MAX_MESSAGE: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Structure(Vec<Item>),
    Integer(i32),
    LongInteger(i64),
    BigInteger(Vec<u8>),
    Enumeration(u32),
    Boolean(bool),
    TextString(String),
    ByteString(Vec<u8>),
    DateTime(i64),
    Interval(u32),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub tag: u32,
    pub value: Value,
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum TtlvError {
    #[error("TTLV: truncated")]
    Truncated,
    #[error("TTLV: {0}")]
    Malformed(String),
}

fn padded(n: usize) -> usize {
    n.div_ceil(8).saturating_mul(8)
}

impl Item {
    pub fn new(tag: u32, value: Value) -> Item {
        Item { tag, value }
    }

    pub fn structure(tag: u32, items: Vec<Item>) -> Item {
        Item::new(tag, Value::Structure(items))
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.tag.to_be_bytes()[1..]);
        let (kind, body): (u8, Vec<u8>) = match &self.value {
            Value::Structure(items) => {
                let mut b = Vec::new();
                for i in items {
                    i.encode_into(&mut b);
                }
                (types::STRUCTURE, b)
            }
            Value::Integer(v) => (types::INTEGER, v.to_be_bytes().to_vec()),
            Value::LongInteger(v) => (types::LONG_INTEGER, v.to_be_bytes().to_vec()),
            Value::BigInteger(v) => (types::BIG_INTEGER, v.clone()),
            Value::Enumeration(v) => (types::ENUMERATION, v.to_be_bytes().to_vec()),
            Value::Boolean(v) => (types::BOOLEAN, u64::from(*v).to_be_bytes().to_vec()),
            Value::TextString(v) => (types::TEXT_STRING, v.as_bytes().to_vec()),
            Value::ByteString(v) => (types::BYTE_STRING, v.clone()),
            Value::DateTime(v) => (types::DATE_TIME, v.to_be_bytes().to_vec()),
            Value::Interval(v) => (types::INTERVAL, v.to_be_bytes().to_vec()),
        };
        out.push(kind);
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let len = body.len();
        out.extend_from_slice(&body);
        out.resize(out.len() + padded(len) - len, 0);
    }

    /// One item from the start of `buf`, and the bytes it took (padding included).
    pub fn decode(buf: &[u8]) -> Result<(Item, usize), TtlvError> {
        decode_at(buf, 0)
    }

    /// The first item of a structure with `tag`.
    pub fn child(&self, tag: u32) -> Option<&Item> {
        match &self.value {
            Value::Structure(items) => items.iter().find(|i| i.tag == tag),
            _ => None,
        }
    }

    /// Every item of a structure with `tag`.
    pub fn children(&self, tag: u32) -> impl Iterator<Item = &Item> {
        let items: &[Item] = match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        };
        items.iter().filter(move |i| i.tag == tag)
    }

    /// The item at the end of a path of tags through nested structures.
    pub fn path(&self, tags: &[u32]) -> Option<&Item> {
        tags.iter().try_fold(self, |item, tag| item.child(*tag))
    }

    pub fn bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::ByteString(b) => Some(b),
            _ => None,
        }
    }

    pub fn text(&self) -> Option<&str> {
        match &self.value {
            Value::TextString(t) => Some(t),
            _ => None,
        }
    }

    pub fn enumeration(&self) -> Option<u32> {
        match &self.value {
            Value::Enumeration(v) => Some(*v),
            _ => None,
        }
    }
}

fn fixed<const N: usize>(body: &[u8], kind: &str) -> Result<[u8; N], TtlvError> {
    body.try_into()
        .map_err(|_| TtlvError::Malformed(format!("{kind} of {} bytes", body.len())))
}

fn decode_at(buf: &[u8], depth: usize) -> Result<(Item, usize), TtlvError> {
    if depth > MAX_DEPTH {
        return Err(TtlvError::Malformed("structures nested too deep".into()));
    }
    let head: &[u8; 8] = buf
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .ok_or(TtlvError::Truncated)?;
    let tag = u32::from_be_bytes([0, head[0], head[1], head[2]]);
    let kind = head[3];
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let body = buf.get(8..8usize.saturating_add(len)).ok_or(TtlvError::Truncated)?;
    let taken = 8usize.saturating_add(padded(len));
    if buf.len() < taken {
        return Err(TtlvError::Truncated);
    }
    let value = match kind {
        types::STRUCTURE => {
            let mut items = Vec::new();
            let mut at = 0;
            while at < body.len() {
                let (item, n) = decode_at(&body[at..], depth + 1)?;
                items.push(item);
                at += n;
            }
            Value::Structure(items)
        }
        types::INTEGER => Value::Integer(i32::from_be_bytes(fixed(body, "an integer")?)),
        types::LONG_INTEGER => Value::LongInteger(i64::from_be_bytes(fixed(body, "a long integer")?)),
        types::BIG_INTEGER => Value::BigInteger(body.to_vec()),
        types::ENUMERATION => Value::Enumeration(u32::from_be_bytes(fixed(body, "an enumeration")?)),
        types::BOOLEAN => Value::Boolean(u64::from_be_bytes(fixed(body, "a boolean")?) != 0),
        types::TEXT_STRING => Value::TextString(
            String::from_utf8(body.to_vec()).map_err(|_| TtlvError::Malformed("a text string not in UTF-8".into()))?,
        ),
        types::BYTE_STRING => Value::ByteString(body.to_vec()),
        types::DATE_TIME => Value::DateTime(i64::from_be_bytes(fixed(body, "a date-time")?)),
        types::INTERVAL => Value::Interval(u32::from_be_bytes(fixed(body, "an interval")?)),
        other => return Err(TtlvError::Malformed(format!("type {other:#04x}"))),
    };
    Ok((Item { tag, value }, taken))
}

/// The length of the message whose first 8 bytes are `head` (for reading one from a stream).
pub fn message_len(head: &[u8; 8]) -> Result<usize, TtlvError> {
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    if head[3] != types::STRUCTURE || len > MAX_MESSAGE {
        return Err(TtlvError::Malformed(format!(
            "a message of type {:#04x} and {len} bytes",
            head[3]
        )));
    }
    Ok(8 + padded(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_encodings_from_the_specification() {
        // KMIP 1.4 §9.1.2: an Integer 8, an Enumeration 255, a Text String "Hello World",
        // a Structure holding an Enumeration and an Integer.
        let int = Item::new(0x420020, Value::Integer(8)).encode();
        assert_eq!(hex::encode(int), "42002002000000040000000800000000");
        let e = Item::new(0x420020, Value::Enumeration(255)).encode();
        assert_eq!(hex::encode(e), "4200200500000004000000ff00000000");
        let t = Item::new(0x420020, Value::TextString("Hello World".into())).encode();
        assert_eq!(hex::encode(t), "420020070000000b48656c6c6f20576f726c640000000000");
        let s = Item::structure(
            0x420020,
            vec![
                Item::new(0x420004, Value::Enumeration(254)),
                Item::new(0x420005, Value::Integer(255)),
            ],
        )
        .encode();
        assert_eq!(
            hex::encode(s),
            "42002001000000204200040500000004000000fe000000004200050200000004000000ff00000000"
        );
    }

    fn item() -> impl Strategy<Value = Item> {
        let tag = 0x420000u32..0x42ffff;
        let leaf = prop_oneof![
            any::<i32>().prop_map(Value::Integer),
            any::<i64>().prop_map(Value::LongInteger),
            proptest::collection::vec(any::<u8>(), 0..24).prop_map(Value::BigInteger),
            any::<u32>().prop_map(Value::Enumeration),
            any::<bool>().prop_map(Value::Boolean),
            ".{0,20}".prop_map(Value::TextString),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::ByteString),
            any::<i64>().prop_map(Value::DateTime),
            any::<u32>().prop_map(Value::Interval),
        ];
        let leaf_item = (tag.clone(), leaf).prop_map(|(tag, value)| Item { tag, value });
        leaf_item.prop_recursive(4, 32, 6, move |inner| {
            (tag.clone(), proptest::collection::vec(inner, 0..6)).prop_map(|(t, items)| Item::structure(t, items))
        })
    }

    proptest! {
        #[test]
        fn every_item_decodes_to_itself(i in item()) {
            let bytes = i.encode();
            prop_assert_eq!(bytes.len() % 8, 0);
            let (back, n) = Item::decode(&bytes).unwrap();
            prop_assert_eq!(n, bytes.len());
            prop_assert_eq!(back, i);
        }

        #[test]
        fn no_input_makes_the_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Item::decode(&bytes);
        }

        #[test]
        fn a_cut_message_is_truncated_not_misread(i in item(), cut in 1usize..64) {
            let bytes = i.encode();
            let keep = bytes.len().saturating_sub(cut);
            prop_assert!(Item::decode(&bytes[..keep]).is_err());
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut i = Item::new(0x420001, Value::Integer(1));
        for _ in 0..40 {
            i = Item::structure(0x420001, vec![i]);
        }
        assert!(matches!(Item::decode(&i.encode()), Err(TtlvError::Malformed(_))));
    }
}
