//! The few DER structures x509-parser and rcgen leave to us: walking a SEQUENCE (extended key usages in
//! their on-disk order), unwrapping PKCS#8 to the PKCS#1 encoding kubeadm writes for RSA keys, and writing
//! the handful of values a CA certificate issued again needs (`engine::sign::reissue_ca`).

/// One tag-length-value. Only definite lengths (DER) are accepted.
pub struct Tlv<'a> {
    pub tag: u8,
    pub value: &'a [u8],
}

/// Reads one TLV from the front of `input`, returning it and the rest.
pub fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, &b| (acc << 8) | b as usize);
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((Tlv { tag, value: &rest[..len] }, &rest[len..]))
}

/// Like [`read`], with the whole encoding (tag, length and value) of the TLV read.
pub fn read_raw(input: &[u8]) -> Option<(Tlv<'_>, &[u8], &[u8])> {
    let (tlv, rest) = read(input)?;
    Some((tlv, &input[..input.len() - rest.len()], rest))
}

/// The elements of a SEQUENCE's value, each as its whole encoding.
pub fn raw_elements(mut value: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !value.is_empty() {
        let (_, raw, rest) = read_raw(value)?;
        out.push(raw);
        value = rest;
    }
    Some(out)
}

/// One TLV in DER: `tag`, the definite length in its shortest form, `value`.
pub fn encode(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|&b| b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value);
    out
}

/// A non-negative INTEGER of the big-endian `magnitude`, in DER's shortest form (a leading zero only
/// where the top bit would make it negative).
pub fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|&b| b == 0).collect();
    let mut value = match trimmed.first() {
        None => vec![0],
        Some(&b) if b & 0x80 != 0 => [&[0u8][..], &trimmed].concat(),
        Some(_) => trimmed,
    };
    if value.is_empty() {
        value.push(0);
    }
    encode(0x02, &value)
}

/// An X.509 `Time` (RFC 5280 4.1.2.5): UTCTime through 2049, GeneralizedTime from 2050, to the second, `Z`.
pub fn time(t: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    use chrono::Datelike;
    if (1950..2050).contains(&t.year()) {
        encode(0x17, t.format("%y%m%d%H%M%SZ").to_string().as_bytes())
    } else {
        encode(0x18, t.format("%Y%m%d%H%M%SZ").to_string().as_bytes())
    }
}

/// The elements of a SEQUENCE's value.
pub fn elements(mut value: &[u8]) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    while !value.is_empty() {
        let (tlv, rest) = read(value)?;
        out.push(tlv);
        value = rest;
    }
    Some(out)
}

/// Dotted form of an OBJECT IDENTIFIER's content octets.
pub fn oid_string(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, &b) in content.iter().enumerate() {
        acc = acc.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = if acc < 80 { acc / 40 } else { 2 };
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        } else if i == content.len() - 1 {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(arcs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join("."))
}

/// PKCS#8 `PrivateKeyInfo` → the inner private key (PKCS#1 `RSAPrivateKey` for RSA).
pub fn pkcs8_inner(der: &[u8]) -> Option<&[u8]> {
    let (outer, _) = read(der)?;
    if outer.tag != 0x30 {
        return None;
    }
    let parts = elements(outer.value)?;
    // version INTEGER, algorithm SEQUENCE, privateKey OCTET STRING
    match parts.as_slice() {
        [v, alg, key, ..] if v.tag == 0x02 && alg.tag == 0x30 && key.tag == 0x04 => Some(key.value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids() {
        // 1.3.6.1.5.5.7.3.1 serverAuth
        assert_eq!(oid_string(&[0x2b, 6, 1, 5, 5, 7, 3, 1]).as_deref(), Some("1.3.6.1.5.5.7.3.1"));
        // 2.5.4.3 commonName
        assert_eq!(oid_string(&[0x55, 4, 3]).as_deref(), Some("2.5.4.3"));
        assert_eq!(oid_string(&[0x2b, 0x86]), None);
    }

    #[test]
    fn what_is_written_reads_back_in_shortest_form() {
        assert_eq!(encode(0x04, &[1, 2]), [0x04, 2, 1, 2]);
        let long = encode(0x04, &[7; 300]);
        assert_eq!(&long[..4], [0x04, 0x82, 0x01, 0x2c]);
        let (tlv, raw, rest) = read_raw(&long).unwrap();
        assert_eq!((tlv.value.len(), raw.len(), rest.len()), (300, 304, 0));
        assert_eq!(unsigned_integer(&[0, 0, 0x7f, 1]), [0x02, 2, 0x7f, 1]);
        assert_eq!(unsigned_integer(&[0x80]), [0x02, 2, 0, 0x80]);
        assert_eq!(unsigned_integer(&[0, 0]), [0x02, 1, 0]);
        let t = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        assert_eq!(time(t("2036-12-01T15:16:22Z")), [&[0x17, 13][..], b"361201151622Z"].concat());
        assert_eq!(time(t("2050-01-01T00:00:00Z")), [&[0x18, 15][..], b"20500101000000Z"].concat());
    }

    #[test]
    fn long_lengths_and_truncation() {
        let mut v = vec![0x04, 0x82, 0x01, 0x00];
        v.extend(std::iter::repeat_n(7u8, 256));
        let (tlv, rest) = read(&v).unwrap();
        assert_eq!(tlv.value.len(), 256);
        assert!(rest.is_empty());
        assert!(read(&v[..100]).is_none());
        assert!(read(&[0x30]).is_none());
    }
}
