//! Patterns of policy documents: `*` (any run of characters), `?` (one character), and, in
//! policies of version 2012-10-17, variables such as `${aws:username}` filled from the
//! request (`${*}`, `${?}`, `${$}` stand for the literal characters).

use crate::context::Context;

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Lit(char),
    Star,
    One,
    Var(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Pattern {
    toks: Vec<Tok>,
    /// The pattern as bytes when it is ASCII without variables: matched without allocating.
    ascii: Option<Vec<FlatByte>>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum FlatByte {
    Lit(u8),
    Star,
    One,
}

#[derive(Clone, Copy, PartialEq)]
enum Flat {
    Lit(char),
    Star,
    One,
}

impl Pattern {
    /// Parses a pattern; `variables`: whether `${…}` is a variable (else it is literal text).
    pub fn parse(text: &str, variables: bool) -> Result<Pattern, String> {
        Pattern::parse_with(text, variables, true)
    }

    /// A pattern whose `*` and `?` are plain characters (for `StringEquals`), variables
    /// filled in if `variables`.
    pub fn exact(text: &str, variables: bool) -> Result<Pattern, String> {
        Pattern::parse_with(text, variables, false)
    }

    fn parse_with(text: &str, variables: bool, wildcards: bool) -> Result<Pattern, String> {
        let mut toks = Vec::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' if wildcards => toks.push(Tok::Star),
                '?' if wildcards => toks.push(Tok::One),
                '$' if variables && chars.peek() == Some(&'{') => {
                    chars.next();
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => return Err(format!("unterminated policy variable in '{text}'")),
                        }
                    }
                    match name.as_str() {
                        "*" => toks.push(Tok::Lit('*')),
                        "?" => toks.push(Tok::Lit('?')),
                        "$" => toks.push(Tok::Lit('$')),
                        n if n.contains(':') && !n.is_empty() => toks.push(Tok::Var(n.to_ascii_lowercase())),
                        n => return Err(format!("invalid policy variable '${{{n}}}'")),
                    }
                }
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern::of(toks))
    }

    fn of(toks: Vec<Tok>) -> Pattern {
        let ascii = toks
            .iter()
            .map(|t| match t {
                Tok::Lit(c) if c.is_ascii() => Some(FlatByte::Lit(*c as u8)),
                Tok::Star => Some(FlatByte::Star),
                Tok::One => Some(FlatByte::One),
                _ => None,
            })
            .collect();
        Pattern { toks, ascii }
    }

    /// A pattern that is the text itself (no wildcard, no variable).
    pub fn literal(text: &str) -> Pattern {
        Pattern::of(text.chars().map(Tok::Lit).collect())
    }

    /// The variables it reads (lower-case names).
    pub fn variables(&self) -> impl Iterator<Item = &str> {
        self.toks.iter().filter_map(|t| match t {
            Tok::Var(v) => Some(v.as_str()),
            _ => None,
        })
    }

    /// Whether the pattern matches `text`. A variable the request does not carry matches
    /// nothing, as in AWS.
    pub fn matches(&self, text: &str, ctx: &Context, case_insensitive: bool) -> bool {
        if let (Some(p), true) = (&self.ascii, text.is_ascii()) {
            return wildcard_ascii(p, text.as_bytes(), case_insensitive);
        }
        let mut flat = Vec::with_capacity(self.toks.len());
        for t in &self.toks {
            match t {
                Tok::Lit(c) => flat.push(Flat::Lit(*c)),
                Tok::Star => flat.push(Flat::Star),
                Tok::One => flat.push(Flat::One),
                Tok::Var(name) => match ctx.single(name) {
                    Some(v) => flat.extend(v.chars().map(Flat::Lit)),
                    None => return false,
                },
            }
        }
        let text: Vec<char> = text.chars().collect();
        wildcard(&flat, &text, case_insensitive)
    }

    /// The literal text before the first wildcard or variable.
    pub fn literal_prefix(&self) -> String {
        self.toks
            .iter()
            .map_while(|t| match t {
                Tok::Lit(c) => Some(*c),
                _ => None,
            })
            .collect()
    }
}

/// `wildcard` on ASCII bytes (the common case: actions, ARNs, addresses).
fn wildcard_ascii(p: &[FlatByte], t: &[u8], ci: bool) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(FlatByte::Star) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(FlatByte::One) => {
                pi += 1;
                ti += 1;
            }
            Some(FlatByte::Lit(c)) if *c == t[ti] || (ci && c.eq_ignore_ascii_case(&t[ti])) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|f| *f == FlatByte::Star)
}

fn eq(a: char, b: char, ci: bool) -> bool {
    a == b || (ci && a.to_lowercase().eq(b.to_lowercase()))
}

/// Greedy matching with one backtrack point (the last `*`): O(pattern × text) at worst,
/// never exponential.
fn wildcard(p: &[Flat], t: &[char], ci: bool) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some(Flat::Star) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(Flat::One) => {
                pi += 1;
                ti += 1;
            }
            Some(Flat::Lit(c)) if eq(*c, t[ti], ci) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|f| *f == Flat::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The obvious recursive definition, for small inputs.
    fn reference(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| reference(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && reference(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && reference(rest, &t[1..]),
        }
    }

    proptest! {
        #[test]
        fn matches_like_the_definition(p in "[ab*?]{0,8}", t in "[ab]{0,10}") {
            let pat = Pattern::parse(&p, true).unwrap();
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            prop_assert_eq!(pat.matches(&t, &Context::default(), false), reference(&pc, &tc));
        }

        #[test]
        fn ascii_and_unicode_paths_agree(p in "[aB*?é]{0,8}", t in "[abAé]{0,10}") {
            // The same pattern matched through the byte path (ASCII text) and the char path.
            let pat = Pattern::parse(&p, false).unwrap();
            let pc: Vec<char> = p.chars().collect();
            let tc: Vec<char> = t.chars().collect();
            prop_assert_eq!(pat.matches(&t, &Context::default(), false), reference(&pc, &tc));
            let lower = t.to_lowercase();
            let upper = t.to_uppercase();
            prop_assert_eq!(
                pat.matches(&upper, &Context::default(), true),
                pat.matches(&lower, &Context::default(), true)
            );
        }

        #[test]
        fn a_text_matches_itself_and_star_matches_all(t in "[^*?$]{0,30}") {
            let ctx = Context::default();
            prop_assert!(Pattern::parse(&t, true).unwrap().matches(&t, &ctx, false));
            prop_assert!(Pattern::parse("*", true).unwrap().matches(&t, &ctx, false));
            prop_assert!(Pattern::literal(&t).matches(&t, &ctx, false));
        }

        #[test]
        fn parsing_never_panics(p in "\\PC{0,40}") {
            let _ = Pattern::parse(&p, true);
        }
    }

    #[test]
    fn variables_and_escapes() {
        let mut ctx = Context::default();
        ctx.set("aws:username", "alice");
        let p = Pattern::parse("arn:aws:s3:::home/${aws:username}/*", true).unwrap();
        assert!(p.matches("arn:aws:s3:::home/alice/notes.txt", &ctx, false));
        assert!(!p.matches("arn:aws:s3:::home/bob/notes.txt", &ctx, false));
        // A variable the request lacks matches nothing.
        assert!(!Pattern::parse("${aws:userid}", true).unwrap().matches("", &ctx, false));
        // Escapes are literal, not wildcards.
        let lit = Pattern::parse("a${*}b", true).unwrap();
        assert!(lit.matches("a*b", &ctx, false) && !lit.matches("axb", &ctx, false));
        // Without variables (version 2008-10-17), `${…}` is text.
        assert!(Pattern::parse("${aws:username}", false)
            .unwrap()
            .matches("${aws:username}", &ctx, false));
        assert!(Pattern::parse("${unterminated", true).is_err());
        assert!(Pattern::parse("${}", true).is_err());
        assert!(Pattern::parse("s3:Get*", true)
            .unwrap()
            .matches("s3:getobject", &ctx, true));
        assert_eq!(Pattern::parse("ab*c", true).unwrap().literal_prefix(), "ab");
        let exact = Pattern::exact("${aws:username}*", true).unwrap();
        assert!(exact.matches("alice*", &ctx, false) && !exact.matches("alice2", &ctx, false));
    }
}
