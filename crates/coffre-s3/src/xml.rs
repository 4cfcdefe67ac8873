//! XML out (escaped strings into a buffer) and in (quick-xml, for the few request bodies S3 has).

pub const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => o.push_str(&format!("&#x{:X};", c as u32)),
            c => o.push(c),
        }
    }
    o
}

/// A small writer: `x.open("A"); x.elem("B", "v"); x.close("A")`.
pub struct Xml(pub String);

impl Xml {
    pub fn new(root: &str) -> Xml {
        Xml(format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"{NS}\">"
        ))
    }
    pub fn open(&mut self, n: &str) -> &mut Self {
        self.0.push('<');
        self.0.push_str(n);
        self.0.push('>');
        self
    }
    pub fn close(&mut self, n: &str) -> &mut Self {
        self.0.push_str("</");
        self.0.push_str(n);
        self.0.push('>');
        self
    }
    pub fn elem(&mut self, n: &str, v: &str) -> &mut Self {
        self.open(n);
        self.0.push_str(&escape(v));
        self.close(n)
    }
    /// Markup written as given (a caller's constant, never client data).
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.0.push_str(markup);
        self
    }
    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.0
    }
}

/// A parsed element tree: enough for CreateBucketConfiguration, Delete, Tagging.
#[derive(Debug, Default)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }
}

/// Parses a request body into a tree of at most `max_elements` elements, read as a stream:
/// a body with more stops at the first one over, before it costs more memory.
pub fn parse(body: &[u8], max_elements: usize) -> Result<Node, crate::S3Error> {
    use quick_xml::events::Event;
    let bad = |m: &str| crate::S3Error::malformed_xml(format!("The XML you provided was not well-formed: {m}"));
    let mut r = quick_xml::Reader::from_reader(body);
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut buf = Vec::new();
    let mut elements = 0usize;
    loop {
        let event = r.read_event_into(&mut buf).map_err(|e| bad(&e.to_string()))?;
        if matches!(event, Event::Start(_) | Event::Empty(_)) {
            elements += 1;
            if elements > max_elements {
                return Err(crate::S3Error::malformed_xml(format!(
                    "The XML you provided holds more than the {max_elements} elements this request may have"
                )));
            }
        }
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if stack.len() > coffre_types::limits::MAX_XML_DEPTH {
                    return Err(bad("nesting too deep"));
                }
                stack.push(Node {
                    name,
                    ..Default::default()
                });
            }
            Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                stack
                    .last_mut()
                    .ok_or_else(|| bad("stray element"))?
                    .children
                    .push(Node {
                        name,
                        ..Default::default()
                    });
            }
            Event::End(_) => {
                let n = stack.pop().ok_or_else(|| bad("unbalanced"))?;
                stack.last_mut().ok_or_else(|| bad("unbalanced"))?.children.push(n);
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|e| bad(&e.to_string()))?;
                let s = quick_xml::escape::unescape(&s).map_err(|e| bad(&e.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::GeneralRef(e) => {
                let name = e.decode().map_err(|e| bad(&e.to_string()))?;
                let entity = format!("&{name};");
                let s = quick_xml::escape::unescape(&entity).map_err(|e| bad(&e.to_string()))?;
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if stack.len() != 1 {
        return Err(bad("unclosed element"));
    }
    let mut root = stack.pop().unwrap_or_default();
    match root.children.len() {
        1 => Ok(root.children.remove(0)),
        _ => Err(bad("expected one root element")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_delete() {
        let n = parse(b"<?xml version=\"1.0\"?><Delete xmlns=\"x\"><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key></Object></Delete>", 100).unwrap();
        assert_eq!(n.name, "Delete");
        assert_eq!(n.child("Quiet").unwrap().text, "true");
        let keys: Vec<_> = n.all("Object").map(|o| o.child("Key").unwrap().text.clone()).collect();
        assert_eq!(keys, ["a&b", "c"]);
        assert!(parse(b"<a><b></a>", 100).is_err());
        assert!(parse(b"", 100).is_err());
        assert!(parse(b"not xml", 100).is_err());
        // Counting stops the parse at the first element over the limit.
        let many = format!("<Delete>{}</Delete>", "<Object><Key>k</Key></Object>".repeat(600));
        assert!(parse(many.as_bytes(), 1201).is_ok());
        assert_eq!(parse(many.as_bytes(), 1200).unwrap_err().code, "MalformedXML");
    }

    proptest::proptest! {
        /// Whatever the bytes, parsing answers (a tree or MalformedXML), never panics.
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = parse(&body, 64);
        }

        #[test]
        fn parse_never_panics_on_xmlish(body in "(<[A-Za-z]{1,3}>|</[A-Za-z]{1,3}>|<[A-Za-z]/>|&[a-z]{1,4};|[a-z ]{0,4}|<!\\[CDATA\\[x\\]\\]>){0,40}") {
            let _ = parse(body.as_bytes(), 64);
        }
    }

    #[test]
    fn escapes() {
        assert_eq!(escape("a<b>&\"'\u{1}"), "a&lt;b&gt;&amp;&quot;&apos;&#x1;");
    }
}
