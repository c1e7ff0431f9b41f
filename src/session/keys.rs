//! The detach keys: Docker's `--detach-keys` syntax, which sequence a session uses, and the
//! scanner that finds it in the user's input while forwarding the rest.

/// Docker's default detach sequence, ctrl-p ctrl-q.
pub const DEFAULT: &str = "ctrl-p,ctrl-q";

/// A `--detach-keys` value that is not Docker's syntax.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid --detach-keys {spec:?} at {key:?}: use comma-separated keys, each one character \
     or ctrl-X with X in a-z, @, [, \\, ], ^, _ (e.g. ctrl-p,ctrl-q)"
)]
pub struct KeysError {
    pub spec: String,
    pub key: String,
}

/// A detach sequence: the bytes that, typed in a row, detach the user from the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

impl DetachKeys {
    /// Parses Docker's `--detach-keys` syntax: comma-separated keys, each a single character
    /// or `ctrl-X` with X one of a-z, @, [, \, ], ^ and _.
    pub fn parse(spec: &str) -> Result<DetachKeys, KeysError> {
        let bad = |k: &str| KeysError {
            spec: spec.to_string(),
            key: k.to_string(),
        };
        let mut out = Vec::new();
        for k in spec.split(',') {
            match k.as_bytes() {
                [c] => out.push(*c),
                [b'c', b't', b'r', b'l', b'-', c] => match c.to_ascii_lowercase() {
                    c @ b'a'..=b'z' => out.push(c - b'a' + 1),
                    b'@' => out.push(0),
                    c @ (b'[' | b'\\' | b']' | b'^' | b'_') => out.push(c - b'@'),
                    _ => return Err(bad(k)),
                },
                _ => return Err(bad(k)),
            }
        }
        Ok(DetachKeys(out))
    }

    /// The sequence a session of a task or exec uses: `flag` when given, Docker's default with
    /// a terminal, none otherwise; and none at all without stdin (nothing to type them into).
    pub fn for_session(
        flag: Option<&str>,
        stdin: bool,
        tty: bool,
    ) -> Result<Option<DetachKeys>, KeysError> {
        let spec = match flag {
            Some(k) => k,
            None if tty => DEFAULT,
            None => return Ok(None),
        };
        let keys = DetachKeys::parse(spec)?;
        Ok(stdin.then_some(keys))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Scans forwarded input for the detach sequence, holding back a partial match until it is
/// either completed or broken.
#[derive(Debug)]
pub(crate) struct Scanner {
    keys: Vec<u8>,
    matched: usize,
}

impl Scanner {
    /// Scans for `keys` (none: forwards everything).
    pub(crate) fn new(keys: Option<DetachKeys>) -> Scanner {
        Scanner {
            keys: keys.map(|k| k.0).unwrap_or_default(),
            matched: 0,
        }
    }

    /// Appends to `out` what may be forwarded of `input`; true when the sequence completed (the
    /// rest of `input` is dropped, as Docker does).
    pub(crate) fn scan(&mut self, input: &[u8], out: &mut Vec<u8>) -> bool {
        if self.keys.is_empty() {
            out.extend_from_slice(input);
            return false;
        }
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return true;
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    return true;
                }
            } else {
                out.push(b);
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_and_match_as_docker() {
        assert_eq!(DetachKeys::parse(DEFAULT).unwrap().as_bytes(), [0x10, 0x11]);
        assert_eq!(
            DetachKeys::parse("ctrl-@,a,ctrl-[").unwrap().as_bytes(),
            [0, b'a', 0x1b]
        );
        assert!(DetachKeys::parse("ctrl-1").is_err());
        assert!(DetachKeys::parse("ab").is_err());
        let mut s = Scanner::new(Some(DetachKeys(vec![0x10, 0x11])));
        let mut out = Vec::new();
        // A ctrl-p not followed by ctrl-q is forwarded, late, with what broke the match.
        assert!(!s.scan(b"ls\x10", &mut out));
        assert_eq!(out, b"ls");
        assert!(!s.scan(b"x\x10\x10", &mut out));
        assert_eq!(out, b"ls\x10x\x10");
        assert!(s.scan(b"\x11rest", &mut out));
        assert_eq!(out, b"ls\x10x\x10");
    }

    #[test]
    fn which_sequence_a_session_uses() {
        let default = DetachKeys::parse(DEFAULT).unwrap();
        assert_eq!(
            DetachKeys::for_session(None, true, true).unwrap(),
            Some(default)
        );
        assert_eq!(DetachKeys::for_session(None, true, false).unwrap(), None);
        assert_eq!(
            DetachKeys::for_session(Some("x"), false, true).unwrap(),
            None
        );
        assert_eq!(
            DetachKeys::for_session(Some("ctrl-a,x"), true, false)
                .unwrap()
                .map(|k| k.0),
            Some(vec![1, b'x'])
        );
        // A bad flag is an error even where no keys would be used (as before).
        let err = DetachKeys::for_session(Some("ctrl-9"), false, false).unwrap_err();
        assert!(
            err.to_string().contains("--detach-keys \"ctrl-9\""),
            "{err}"
        );
    }
}
