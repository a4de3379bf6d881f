//! A walk over an XML document's elements and text with quick-xml, each seen with the path
//! of local names (namespace prefixes dropped) down to it: GPX extensions and TCX files are
//! read with it, whatever prefixes their writers chose.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// What the walk saw, at the path it is given with.
#[derive(Debug)]
pub enum Node<'a> {
    /// An element opened (the last name of the path); empty elements open and close.
    Open,
    /// Text (or CDATA) inside the innermost element, unescaped and trimmed.
    Text(&'a str),
    /// The element closed (still the last name of the path).
    Close,
}

/// Walks an XML document, calling `visit` for every element opened, text and element closed.
///
/// # Errors
/// The reason, with its byte offset, when the document is not well-formed XML, ends inside an
/// element, has no element at all, or `visit` refuses it.
pub fn walk(
    bytes: &[u8],
    mut visit: impl FnMut(&[Vec<u8>], Node<'_>) -> Result<(), String>,
) -> Result<(), String> {
    let mut reader = Reader::from_reader(bytes);
    reader.config_mut().trim_text(true);
    reader.config_mut().expand_empty_elements = true;
    let mut path: Vec<Vec<u8>> = Vec::new();
    let mut seen_element = false;
    loop {
        let event =
            reader.read_event().map_err(|e| format!("XML error at byte {}: {e}", reader.error_position()))?;
        match event {
            Event::Start(element) => {
                seen_element = true;
                path.push(element.local_name().as_ref().to_vec());
                visit(&path, Node::Open)?;
            }
            Event::End(_) => {
                visit(&path, Node::Close)?;
                path.pop();
            }
            Event::Text(text) if !path.is_empty() => {
                let text = text
                    .unescape()
                    .map_err(|e| format!("XML error at byte {}: {e}", reader.buffer_position()))?;
                visit(&path, Node::Text(&text))?;
            }
            Event::CData(text) if !path.is_empty() => {
                let text = text
                    .decode()
                    .map_err(|e| format!("XML error at byte {}: {e}", reader.buffer_position()))?;
                visit(&path, Node::Text(&text))?;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(open) = path.last() {
        return Err(format!("unexpected end of file inside <{}>", String::from_utf8_lossy(open)));
    }
    if !seen_element {
        return Err("no XML element".to_owned());
    }
    Ok(())
}

/// The local name of the element `n` levels above the innermost one (`0` is the innermost).
pub fn up(path: &[Vec<u8>], n: usize) -> &[u8] {
    path.len().checked_sub(n + 1).map_or(&[], |i| path[i].as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_local_names_and_text_and_says_where_a_document_breaks() {
        let mut seen = Vec::new();
        walk(b"<a:root xmlns:a='x'><a:b>1 </a:b><c/></a:root>", |path, node| {
            if let Node::Text(t) = node {
                seen.push(format!(
                    "{}>{}={t}",
                    String::from_utf8_lossy(up(path, 1)),
                    String::from_utf8_lossy(up(path, 0))
                ));
            }
            Ok(())
        })
        .expect("well-formed");
        assert_eq!(seen, ["root>b=1"]);
        assert!(walk(b"<a><b></a>", |_, _| Ok(())).unwrap_err().contains("XML error"));
        assert!(walk(b"<a>", |_, _| Ok(())).unwrap_err().contains("inside <a>"));
        assert_eq!(walk(b"", |_, _| Ok(())).unwrap_err(), "no XML element");
    }
}
