//! Label and field selectors of Kubernetes list requests (`labelSelector=`, `fieldSelector=`).
//!
//! The grammar and the matching rules follow `k8s.io/apimachinery/pkg/labels/selector.go` and
//! `k8s.io/apimachinery/pkg/fields/selector.go`, so that a client that works against the mock
//! sends selectors a real API server accepts, and gets the same items back. This module only
//! parses and matches; it knows nothing of HTTP, and an invalid selector is an `Err(message)` the
//! caller turns into a 400 `Status`.

use std::collections::BTreeSet;

use serde_json::Value;

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    Exists,
    DoesNotExist,
    /// `=`, `==` and `in (...)`: the label is present and its value is one of these.
    In(BTreeSet<String>),
    /// `!=` and `notin (...)`: the label is absent, or its value is none of these.
    NotIn(BTreeSet<String>),
    /// `>` and `<` (apimachinery `GreaterThan`/`LessThan`): the value parses as an integer.
    Gt(i64),
    Lt(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

/// A parsed label selector; requirements are ANDed (the comma).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    reqs: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Not,      // !
    Eq,       // =
    DoubleEq, // ==
    NotEq,    // !=
    Gt,       // >
    Lt,       // <
    Comma,    // ,
    Open,     // (
    Close,    // )
    In,       // in
    NotInTok, // notin
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Not => "!".into(),
            Token::Eq => "=".into(),
            Token::DoubleEq => "==".into(),
            Token::NotEq => "!=".into(),
            Token::Gt => ">".into(),
            Token::Lt => "<".into(),
            Token::Comma => ",".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::In => "in".into(),
            Token::NotInTok => "notin".into(),
        }
    }
}

/// Characters that end an identifier (apimachinery's `isSpecialSymbol` plus whitespace).
fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '>' | '<' | ',' | '(' | ')')
}

fn lex(input: &str) -> Vec<Token> {
    let chars: Vec<char> = input.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let next = chars.get(i + 1).copied();
        let (tok, len) = match (c, next) {
            ('!', Some('=')) => (Token::NotEq, 2),
            ('=', Some('=')) => (Token::DoubleEq, 2),
            ('!', _) => (Token::Not, 1),
            ('=', _) => (Token::Eq, 1),
            ('>', _) => (Token::Gt, 1),
            ('<', _) => (Token::Lt, 1),
            (',', _) => (Token::Comma, 1),
            ('(', _) => (Token::Open, 1),
            (')', _) => (Token::Close, 1),
            _ => {
                let start = i;
                while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                out.push(match word.as_str() {
                    "in" => Token::In,
                    "notin" => Token::NotInTok,
                    _ => Token::Ident(word),
                });
                continue;
            }
        };
        out.push(tok);
        i += len;
    }
    out
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn found(t: Option<&Token>) -> String {
        t.map(Token::describe).unwrap_or_default()
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let negated = self.peek() == Some(&Token::Not);
        if negated {
            self.pos += 1;
        }
        let key = match self.next() {
            Some(Token::Ident(k)) => k,
            other => {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: identifier",
                    Self::found(other.as_ref())
                ));
            }
        };
        validate_label_key(&key)?;
        if negated {
            return match self.peek() {
                None | Some(Token::Comma) => Ok(Requirement {
                    key,
                    op: Op::DoesNotExist,
                }),
                other => Err(format!(
                    "unable to parse requirement: found '{}', expected: ',' or 'end of string'",
                    Self::found(other)
                )),
            };
        }
        let op = match self.peek() {
            None | Some(Token::Comma) => return Ok(Requirement { key, op: Op::Exists }),
            Some(_) => self.next().expect("peeked"),
        };
        let op = match op {
            Token::Eq | Token::DoubleEq => Op::In(BTreeSet::from([self.single_value()?])),
            Token::NotEq => Op::NotIn(BTreeSet::from([self.single_value()?])),
            Token::In => Op::In(self.value_set()?),
            Token::NotInTok => Op::NotIn(self.value_set()?),
            Token::Gt | Token::Lt => {
                let v = self.single_value()?;
                let n: i64 = v.parse().map_err(|_| {
                    format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer: {v}")
                })?;
                if op == Token::Gt { Op::Gt(n) } else { Op::Lt(n) }
            }
            other => {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: {}",
                    other.describe(),
                    "'=', '!=', '==', 'in', notin'"
                ));
            }
        };
        Ok(Requirement { key, op })
    }

    /// The value after `=`, `==`, `!=`, `>`, `<`; may be empty (`k=` selects `k: ""`).
    fn single_value(&mut self) -> Result<String, String> {
        match self.peek() {
            Some(Token::Ident(_)) => match self.next() {
                Some(Token::Ident(v)) => {
                    validate_label_value(&v)?;
                    Ok(v)
                }
                _ => unreachable!("peeked an identifier"),
            },
            // apimachinery accepts the keywords as plain values here (`k=in`).
            Some(Token::In) | Some(Token::NotInTok) => Ok(self.next().expect("peeked").describe()),
            None | Some(Token::Comma) => Ok(String::new()),
            other => Err(format!(
                "unable to parse requirement: found '{}', expected: identifier",
                Self::found(other)
            )),
        }
    }

    /// `( v1, v2 )` after `in`/`notin`; must not be empty.
    fn value_set(&mut self) -> Result<BTreeSet<String>, String> {
        match self.next() {
            Some(Token::Open) => {}
            other => {
                return Err(format!(
                    "unable to parse requirement: found '{}', expected: '('",
                    Self::found(other.as_ref())
                ));
            }
        }
        let mut set = BTreeSet::new();
        if self.peek() == Some(&Token::Close) {
            self.pos += 1;
        } else {
            // Elements between commas; an empty one (`(a,)`, `(,a)`) is the empty value, as in
            // apimachinery's `parseIdentifiersList`.
            loop {
                match self.peek() {
                    Some(Token::Ident(_) | Token::In | Token::NotInTok) => {
                        let v = self.next().expect("peeked").describe();
                        validate_label_value(&v)?;
                        set.insert(v);
                    }
                    Some(Token::Comma | Token::Close) => {
                        set.insert(String::new());
                    }
                    other => {
                        return Err(format!(
                            "unable to parse requirement: found '{}', expected: ',', ')' or identifier",
                            Self::found(other)
                        ));
                    }
                }
                match self.next() {
                    Some(Token::Comma) => {}
                    Some(Token::Close) => break,
                    other => {
                        return Err(format!(
                            "unable to parse requirement: found '{}', expected: ',' or ')'",
                            Self::found(other.as_ref())
                        ));
                    }
                }
            }
        }
        if set.is_empty() {
            return Err(
                "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty"
                    .to_string(),
            );
        }
        Ok(set)
    }
}

impl LabelSelector {
    /// Parses a `labelSelector` query value; the empty string selects everything.
    pub fn parse(input: &str) -> Result<LabelSelector, String> {
        let mut p = Parser {
            toks: lex(input),
            pos: 0,
        };
        let mut reqs = Vec::new();
        while p.peek().is_some() {
            reqs.push(p.requirement()?);
            match p.next() {
                None => break,
                Some(Token::Comma) if p.peek().is_some() => {}
                other => {
                    return Err(format!(
                        "unable to parse requirement: found '{}', expected: ',' or 'end of string'",
                        Parser::found(other.as_ref())
                    ));
                }
            }
        }
        Ok(LabelSelector { reqs })
    }

    pub fn is_empty(&self) -> bool {
        self.reqs.is_empty()
    }

    /// Whether an object (its `metadata.labels`) satisfies every requirement.
    pub fn matches(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        self.reqs.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match (&r.op, value) {
                (Op::Exists, v) => v.is_some(),
                (Op::DoesNotExist, v) => v.is_none(),
                (Op::In(set), Some(v)) => set.contains(v),
                (Op::In(_), None) => false,
                (Op::NotIn(set), Some(v)) => !set.contains(v),
                (Op::NotIn(_), None) => true,
                (Op::Gt(n), Some(v)) => v.parse::<i64>().is_ok_and(|x| x > *n),
                (Op::Lt(n), Some(v)) => v.parse::<i64>().is_ok_and(|x| x < *n),
                (Op::Gt(_) | Op::Lt(_), None) => false,
            }
        })
    }
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63 characters
/// (`validation.IsQualifiedName`, `k8s.io/apimachinery/pkg/util/validation`).
fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty() && name.len() <= 63 && is_label_value_shape(name);
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    });
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label key \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

/// A label value: empty, or at most 63 characters of `[A-Za-z0-9_.-]` starting and ending with an
/// alphanumeric (`validation.IsValidLabelValue`).
fn validate_label_value(v: &str) -> Result<(), String> {
    if v.is_empty() || (v.len() <= 63 && is_label_value_shape(v)) {
        Ok(())
    } else {
        Err(format!(
            "unable to parse requirement: invalid label value: \"{v}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ))
    }
}

fn is_label_value_shape(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_some_and(alnum)
        && s.chars().last().is_some_and(alnum)
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    equal: bool,
}

/// A parsed field selector; terms are ANDed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// Parses a `fieldSelector` query value (`k=v`, `k==v`, `k!=v`, comma-separated; `\` escapes
    /// `,`, `=`, `!` and `\` in values, as `fields.ParseSelector` does).
    pub fn parse(input: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for raw in split_unescaped(input, ',') {
            if raw.is_empty() {
                continue;
            }
            let (field, op_len, equal) = find_operator(&raw)
                .ok_or_else(|| format!("invalid selector: '{input}'; can't understand '{raw}'"))?;
            let value = unescape(&raw[field.len() + op_len..])
                .map_err(|e| format!("invalid selector: '{input}'; {e}"))?;
            terms.push(FieldTerm {
                field: field.trim().to_string(),
                value,
                equal,
            });
        }
        Ok(FieldSelector { terms })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The fields this selector reads, for the caller to check against what a kind supports.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.field.as_str())
    }

    /// Whether the object's field values (from `lookup`) satisfy every term.
    pub fn matches(&self, lookup: impl Fn(&str) -> String) -> bool {
        self.terms
            .iter()
            .all(|t| (lookup(&t.field) == t.value) == t.equal)
    }
}

/// Splits on `sep` not preceded by a backslash, keeping the escapes in the parts.
fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            parts.last_mut().expect("never empty").push(c);
            escaped = false;
        } else if c == '\\' {
            parts.last_mut().expect("never empty").push(c);
            escaped = true;
        } else if c == sep {
            parts.push(String::new());
        } else {
            parts.last_mut().expect("never empty").push(c);
        }
    }
    parts
}

/// The first unescaped operator of a term: `(field, operator length, is_equality)`. At each
/// position `!=` and `==` are tried before `=`, as `fields.splitTerm` does.
fn find_operator(term: &str) -> Option<(&str, usize, bool)> {
    let bytes = term.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        let rest = &term[i..];
        if rest.starts_with("!=") {
            return Some((&term[..i], 2, false));
        }
        if rest.starts_with("==") {
            return Some((&term[..i], 2, true));
        }
        if rest.starts_with('=') {
            return Some((&term[..i], 1, true));
        }
        i += 1;
    }
    None
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=' | '!')) => out.push(e),
                Some(e) => return Err(format!("invalid escape sequence: \\{e}")),
                None => return Err("unterminated escape sequence".into()),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({"metadata": {"labels": labels}})
    }

    #[test]
    fn label_operators() {
        let o = obj(json!({"app": "web", "tier": "front", "n": "5"}));
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app",
            "!missing",
            "app in (web,db)",
            "app in(web)",
            "tier notin (back)",
            "missing notin (x)",
            "app=web, tier=front",
            "n>4",
            "n<6",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&o), "{s} should match");
        }
        let no = [
            "app=db",
            "app!=web",
            "!app",
            "missing",
            "app in (db)",
            "app notin (web,db)",
            "app=web,tier=back",
            "n>5",
            "missing>1",
            "missing in (x)",
        ];
        for s in no {
            assert!(
                !LabelSelector::parse(s).unwrap().matches(&o),
                "{s} should not match"
            );
        }
    }

    #[test]
    fn label_empty_value_and_prefixed_keys() {
        let o = obj(
            json!({"k8s-app": "kube-dns", "node.kubernetes.io/exclude-from-external-load-balancers": ""}),
        );
        assert!(
            LabelSelector::parse("node.kubernetes.io/exclude-from-external-load-balancers=")
                .unwrap()
                .matches(&o)
        );
        assert!(
            LabelSelector::parse("k8s-app in (kube-dns, coredns)")
                .unwrap()
                .matches(&o)
        );
    }

    #[test]
    fn label_syntax_errors() {
        for s in [
            "app in ()",
            "app in web",
            "app in (web",
            "=web",
            "app=web,",
            "app=w eb",
            "!app=web",
            "n>x",
            "-bad=1",
            "app=-bad",
        ] {
            assert!(LabelSelector::parse(s).is_err(), "{s} should be rejected");
        }
    }

    #[test]
    fn field_selectors() {
        let lookup = |f: &str| match f {
            "metadata.name" => "a,b".to_string(),
            "metadata.namespace" => "default".to_string(),
            _ => String::new(),
        };
        let s = FieldSelector::parse("metadata.namespace=default,metadata.name==a\\,b").unwrap();
        assert!(s.matches(lookup));
        assert_eq!(
            s.fields().collect::<Vec<_>>(),
            ["metadata.namespace", "metadata.name"]
        );
        assert!(
            !FieldSelector::parse("metadata.namespace!=default")
                .unwrap()
                .matches(lookup)
        );
        assert!(FieldSelector::parse("spec.nodeName=").unwrap().matches(lookup));
        assert!(FieldSelector::parse("metadata.name").is_err());
        assert!(FieldSelector::parse("metadata.name=\\x").is_err());
        assert!(FieldSelector::parse("").unwrap().is_empty());
    }
}
