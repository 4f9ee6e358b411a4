//! A certificate's subject as text (`CN=client,O=Example`), for
//! [`Controller::peer_certificate_subject`](crate::Controller::peer_certificate_subject).
//!
//! rustls verifies certificates but does not expose their fields, and a
//! full X.509 parser is a large dependency for one string: this walks
//! the DER just far enough (RFC 5280 §4.1): Certificate → tbsCertificate
//! → the sixth field, subject, a sequence of sets of (OID, string).

/// One DER element: its tag, contents, and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// `[0] EXPLICIT Version` of tbsCertificate.
const VERSION: u8 = 0xa0;

/// The subject of the certificate `der`, as `TYPE=value` pairs joined by
/// commas in the certificate's order (RFC 4514 lists them reversed; the
/// certificate's order reads more naturally, as `openssl x509 -subject`
/// prints it). `None` if the certificate cannot be read.
pub(crate) fn subject_of(der: &[u8]) -> Option<String> {
    let (SEQUENCE, cert, _) = element(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = element(cert)? else {
        return None;
    };
    let mut rest = tbs;
    let (tag, _, after) = element(rest)?;
    if tag == VERSION {
        rest = after;
    }
    // serial, signature, issuer, validity: skipped; then the subject.
    for _ in 0..4 {
        rest = element(rest)?.2;
    }
    let (SEQUENCE, mut rdns, _) = element(rest)? else {
        return None;
    };
    let mut parts = Vec::new();
    while !rdns.is_empty() {
        let (SET, mut set, next) = element(rdns)? else {
            return None;
        };
        rdns = next;
        while !set.is_empty() {
            let (SEQUENCE, attr, next) = element(set)? else {
                return None;
            };
            set = next;
            let (OID, oid, value) = element(attr)? else {
                return None;
            };
            let (_, value, _) = element(value)?;
            parts.push(format!(
                "{}={}",
                name_of(oid),
                String::from_utf8_lossy(value)
            ));
        }
    }
    Some(parts.join(","))
}

/// The short name of an attribute type (X.520, under 2.5.4), or its
/// OID in dotted form.
fn name_of(oid: &[u8]) -> String {
    match oid {
        [0x55, 0x04, 0x03] => "CN".into(),
        [0x55, 0x04, 0x06] => "C".into(),
        [0x55, 0x04, 0x07] => "L".into(),
        [0x55, 0x04, 0x08] => "ST".into(),
        [0x55, 0x04, 0x0a] => "O".into(),
        [0x55, 0x04, 0x0b] => "OU".into(),
        _ => dotted(oid),
    }
}

fn dotted(oid: &[u8]) -> String {
    let mut arcs = Vec::new();
    let mut v: u64 = 0;
    for &b in oid {
        v = (v << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (v / 40).min(2);
                arcs.push(first);
                arcs.push(v - first * 40);
            } else {
                arcs.push(v);
            }
            v = 0;
        }
    }
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rcgen_subjects() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::new(vec!["x".to_string()]).unwrap();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "client one");
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        let cert = p.self_signed(&key).unwrap();
        assert_eq!(
            subject_of(cert.der()).as_deref(),
            Some("CN=client one,O=Example")
        );
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(subject_of(b""), None);
        assert_eq!(subject_of(b"\x30\x05abc"), None);
        assert_eq!(subject_of(b"\x30\x84\xff\xff\xff\xff"), None);
    }

    #[test]
    fn dotted_oids() {
        assert_eq!(
            dotted(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d]),
            "1.2.840.113549"
        );
    }
}
