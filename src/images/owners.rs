//! Squashes the owners of a layer's files to uid/gid 0 as the layer streams into containerd, for
//! users without subordinate ids: their user namespace maps one id, so containerd's unpack
//! cannot chown a file to any other. Runs as containerd's stream processor for layer media types
//! (`burrow internal layer-squash`, configured by `setup install` for such users): the tar
//! (gzip- or zstd-compressed, or not) comes on stdin, the same tar with every owner made 0 goes to stdout.
//! Works on the tar's 512-byte blocks, so names, modes, links, xattrs and data pass unchanged.

use std::io::{self, BufReader, Read, Write};

const BLOCK: usize = 512;

/// The media types the processor takes (gzip, zstd or plain tar layers) and the one it returns.
pub const ACCEPTS: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];
pub const RETURNS: &str = "application/vnd.oci.image.layer.v1.tar";

/// What a squash changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Squashed {
    /// Entries whose owner was not already 0:0.
    pub entries: u64,
}

/// The processor's entry point: stdin to stdout, decompressing gzip and zstd; owners are
/// squashed only where this process's user namespace maps a single id (elsewhere the tar passes
/// unchanged).
pub fn processor_main() -> anyhow::Result<()> {
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    let squash = crate::connection::is_single_id_map(&map);
    let stdin = io::stdin().lock();
    let stdout = io::stdout().lock();
    let mut out = io::BufWriter::with_capacity(1 << 20, stdout);
    let reader = super::compression::decompressed(BufReader::with_capacity(1 << 20, stdin))?;
    if squash {
        squash_owners(reader, &mut out)?;
    } else {
        let mut reader = reader;
        io::copy(&mut reader, &mut out)?;
    }
    out.flush()?;
    Ok(())
}

/// Copies the tar on `input` to `output` with every entry's uid and gid 0 (and user and group
/// names "root"), PAX owner records dropped; everything else is copied block for block.
pub fn squash_owners(mut input: impl Read, mut output: impl Write) -> io::Result<Squashed> {
    let mut stats = Squashed::default();
    let mut header = [0u8; BLOCK];
    loop {
        if !read_block(&mut input, &mut header)? {
            return Ok(stats); // a tar without its end blocks; containerd copes with it
        }
        if header.iter().all(|b| *b == 0) {
            // The end of the archive: the rest (more zero blocks) goes as it is.
            output.write_all(&header)?;
            io::copy(&mut input, &mut output)?;
            return Ok(stats);
        }
        let size = parse_size(&header[124..136]).ok_or_else(|| bad("an unreadable size field"))?;
        match header[156] {
            // PAX extended headers: their records may carry the owner too.
            b'x' | b'g' => {
                let data = read_data(&mut input, size)?;
                let (records, dropped) = drop_owner_records(&data);
                if dropped {
                    stats.entries += 1;
                }
                set_size(&mut header, records.len() as u64);
                set_checksum(&mut header);
                output.write_all(&header)?;
                output.write_all(&records)?;
                output.write_all(&vec![0u8; padding(records.len() as u64)])?;
            }
            flag => {
                if squash_header(&mut header) {
                    stats.entries += 1;
                }
                output.write_all(&header)?;
                // Old GNU sparse files: extension headers follow before the data.
                if flag == b'S' && header[482] != 0 {
                    let mut ext = [0u8; BLOCK];
                    loop {
                        if !read_block(&mut input, &mut ext)? {
                            return Err(bad("a sparse header cut short"));
                        }
                        output.write_all(&ext)?;
                        if ext[504] == 0 {
                            break;
                        }
                    }
                }
                let stored = size + padding(size) as u64;
                let copied = io::copy(&mut (&mut input).take(stored), &mut output)?;
                if copied != stored {
                    return Err(bad("an entry cut short"));
                }
            }
        }
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("layer tar: {what}"))
}

/// Reads one whole block; false at a clean end of input.
fn read_block(input: &mut impl Read, block: &mut [u8; BLOCK]) -> io::Result<bool> {
    let mut got = 0;
    while got < BLOCK {
        match input.read(&mut block[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(bad("a header block cut short")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn padding(size: u64) -> usize {
    ((BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64) as usize
}

/// An entry's data without its padding.
fn read_data(input: &mut impl Read, size: u64) -> io::Result<Vec<u8>> {
    if size > 64 << 20 {
        return Err(bad("a PAX header larger than 64 MiB"));
    }
    let mut data = vec![0u8; size as usize + padding(size)];
    input.read_exact(&mut data)?;
    data.truncate(size as usize);
    Ok(data)
}

/// A numeric field: octal text, or GNU's base-256 (high bit of the first byte set).
fn parse_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*b))?;
        }
        return Some(v);
    }
    let text: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn set_size(header: &mut [u8; BLOCK], size: u64) {
    let text = format!("{size:011o}\0");
    header[124..136].copy_from_slice(text.as_bytes());
}

fn set_checksum(header: &mut [u8; BLOCK]) {
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
}

/// Makes a header's owner 0:0 ("root" by name in ustar headers); true if it was another.
fn squash_header(header: &mut [u8; BLOCK]) -> bool {
    let changed =
        parse_size(&header[108..116]) != Some(0) || parse_size(&header[116..124]) != Some(0);
    header[108..116].copy_from_slice(b"0000000\0");
    header[116..124].copy_from_slice(b"0000000\0");
    if &header[257..262] == b"ustar" {
        for range in [265..297, 297..329] {
            header[range.clone()].fill(0);
            header[range.start..range.start + 4].copy_from_slice(b"root");
        }
    }
    set_checksum(header);
    changed
}

/// PAX records without uid, gid, uname and gname; true if any was dropped.
fn drop_owner_records(data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::with_capacity(data.len());
    let mut dropped = false;
    let mut rest = data;
    while !rest.is_empty() {
        // "LEN key=value\n", LEN counting the whole record.
        let Some(space) = rest.iter().position(|b| *b == b' ') else {
            out.extend_from_slice(rest);
            break;
        };
        let len = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|l| *l > space && *l <= rest.len());
        let Some(len) = len else {
            out.extend_from_slice(rest);
            break;
        };
        let record = &rest[..len];
        let key_end = record.iter().position(|b| *b == b'=').unwrap_or(len);
        let key = &record[space + 1..key_end];
        if matches!(key, b"uid" | b"gid" | b"uname" | b"gname") {
            dropped = true;
        } else {
            out.extend_from_slice(record);
        }
        rest = &rest[len..];
    }
    (out, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(
        b: &mut tar::Builder<Vec<u8>>,
        path: &str,
        uid: u64,
        gid: u64,
        data: &[u8],
        kind: tar::EntryType,
    ) {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_uid(uid);
        h.set_gid(gid);
        h.set_mode(0o4755);
        h.set_username("someone").unwrap();
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn owners(tar_bytes: &[u8]) -> Vec<(String, u64, u64, Vec<u8>, u32)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                let h = e.header();
                (
                    e.path().unwrap().display().to_string(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    data,
                    h.mode().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn every_owner_becomes_root_and_nothing_else_changes() {
        let mut b = tar::Builder::new(Vec::new());
        entry(&mut b, "etc/", 0, 0, b"", tar::EntryType::Directory);
        entry(
            &mut b,
            "home/app/file",
            1000,
            1000,
            b"hello",
            tar::EntryType::Regular,
        );
        let long = format!("{}/deep.txt", "d".repeat(150));
        entry(&mut b, &long, 33, 44, &[7u8; 1500], tar::EntryType::Regular);
        // A PAX header carrying a large owner, as Go's archive/tar writes it.
        b.append_pax_extensions([
            ("uid", b"3000000".as_slice()),
            ("path", b"pax/name".as_slice()),
        ])
        .unwrap();
        entry(&mut b, "ignored", 0, 0, b"x", tar::EntryType::Regular);
        let input = b.into_inner().unwrap();

        let mut out = Vec::new();
        let stats = squash_owners(input.as_slice(), &mut out).unwrap();
        assert_eq!(stats.entries, 3, "two ustar owners and one PAX uid");
        assert_eq!(out.len() % BLOCK, 0);
        let got = owners(&out);
        let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(names, ["etc/", "home/app/file", long.as_str(), "pax/name"]);
        for (name, uid, gid, _, _) in &got {
            assert_eq!((*uid, *gid), (0, 0), "{name}");
        }
        assert_eq!(got[1].3, b"hello");
        assert_eq!(got[2].3, vec![7u8; 1500]);
        assert_eq!(got[1].4, 0o4755, "modes are kept");
        // The input read the same apart from owners.
        let before = owners(&input);
        assert_eq!(before[1].1, 1000);
        assert_eq!(before.len(), got.len());
    }

    #[test]
    fn pax_records_keep_all_but_owners() {
        let data = b"15 uid=3000000\n11 gid=100\n18 path=some/name\n13 uname=bob\n";
        let (kept, dropped) = drop_owner_records(data);
        assert!(dropped);
        assert_eq!(kept, b"18 path=some/name\n");
        let (same, dropped) = drop_owner_records(b"18 path=some/name\n");
        assert!(!dropped);
        assert_eq!(same, b"18 path=some/name\n");
    }

    #[test]
    fn truncated_tars_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        entry(&mut b, "f", 5, 5, &[1u8; 2000], tar::EntryType::Regular);
        let input = b.into_inner().unwrap();
        let err = squash_owners(&input[..1024], Vec::new()).unwrap_err();
        assert!(err.to_string().contains("cut short"), "{err}");
    }

    #[test]
    fn numeric_fields_in_both_encodings() {
        assert_eq!(parse_size(b"00000001750\0"), Some(1000));
        assert_eq!(parse_size(b"\0\0\0\0\0\0\0\0"), Some(0));
        let mut big = [0u8; 12];
        big[0] = 0x80;
        big[11] = 0x10;
        big[10] = 0x01;
        assert_eq!(parse_size(&big), Some(0x110));
        assert_eq!(parse_size(b"zz\0"), None);
    }
}
