//! The few DER structures x509-parser and rcgen leave to us: walking a SEQUENCE (extended key usages in
//! their on-disk order) and unwrapping PKCS#8 to the PKCS#1 encoding kubeadm writes for RSA keys.

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
