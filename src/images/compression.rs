//! Compressed tar streams as registries, archives and build contexts carry them: gzip, zstd or
//! none, told apart by their first bytes (as containerd and Docker tell them).

use std::io::{self, BufRead, Read};

/// How a stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Plain,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// The compression a stream starting with `head` uses (anything not gzip or zstd is plain).
pub fn detect(head: &[u8]) -> Compression {
    if head.starts_with(GZIP_MAGIC) {
        Compression::Gzip
    } else if head.starts_with(ZSTD_MAGIC) {
        Compression::Zstd
    } else {
        Compression::Plain
    }
}

/// The decompressed contents of `input` (gzip members and zstd frames may follow one another).
pub fn decompressed<'a>(mut input: impl BufRead + 'a) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match detect(input.fill_buf()?) {
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
        Compression::Plain => Box::new(input),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn gzip_zstd_and_plain_streams_are_read() {
        let tar = vec![9u8; 4096];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        // Two zstd frames back to back, as a layer written in pieces may be.
        let mut zst = zstd::stream::encode_all(&tar[..1000], 3).unwrap();
        zst.extend(zstd::stream::encode_all(&tar[1000..], 3).unwrap());
        for (what, data, kind) in [
            ("plain", tar.clone(), Compression::Plain),
            ("gzip", gz, Compression::Gzip),
            ("zstd", zst, Compression::Zstd),
        ] {
            assert_eq!(detect(&data), kind, "{what}");
            let mut got = Vec::new();
            decompressed(data.as_slice())
                .unwrap()
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(got, tar, "{what}");
        }
        assert_eq!(detect(b""), Compression::Plain);
    }
}
