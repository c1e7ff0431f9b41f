//! Reading a container's json-file log as it grows (`logs -f`, `attach`, `start -a`): from a
//! byte offset in the file being written, across the log driver's rotations, without reading
//! what was already read again.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::logdriver::{self, Record};

/// A reader positioned after the last complete line it returned.
pub struct Follower {
    path: PathBuf,
    /// The file being read: kept open, so the lines written to it before the driver renamed it
    /// to `.1` are still read from it.
    file: Option<File>,
    /// Its inode, to notice that the path now names a new file.
    ino: u64,
    pos: u64,
    /// The bytes of a line the driver has not finished writing.
    partial: Vec<u8>,
}

impl Follower {
    /// Every record the log holds now (rotated files first), and a follower positioned after
    /// them.
    pub fn start(path: &Path) -> std::io::Result<(Vec<Record>, Follower)> {
        // Open the current file first: a rotation after this point leaves our handle on what
        // becomes `.1`, which is then skipped below by its inode.
        let mut f = Follower::at_start(path)?;
        let mut records = Vec::new();
        for rotated in logdriver::files(path).iter().filter(|p| *p != path) {
            if inode(rotated) != Some(f.ino) {
                records.extend(logdriver::read(rotated)?);
            }
        }
        records.extend(f.drain()?);
        Ok((records, f))
    }

    /// A follower of what is written from now on (`attach`): what the log holds is skipped
    /// without being read.
    pub fn from_end(path: &Path) -> std::io::Result<Follower> {
        let mut f = Follower::at_start(path)?;
        if let Some(file) = &f.file {
            f.pos = file.metadata()?.len();
            let mut last = [b'\n'];
            if f.pos > 0 {
                file.read_exact_at(&mut last, f.pos - 1)?;
            }
            if last[0] != b'\n' {
                // The driver is in the middle of a line: its rest is not a record of its own,
                // and this unparsable prefix makes sure it is dropped.
                f.partial = b"\0".to_vec();
            }
        }
        Ok(f)
    }

    /// The records written since the last call, oldest first.
    pub fn poll(&mut self) -> std::io::Result<Vec<Record>> {
        let mut records = self.drain()?;
        match inode(&self.path) {
            Some(ino) if ino != self.ino || self.file.is_none() => {
                // Rotated: what was written to the old file is read above; files rotated in
                // between (more than one rotation since the last poll) are read whole.
                if self.file.is_some() {
                    let rotated = logdriver::files(&self.path);
                    let newer = rotated
                        .iter()
                        .filter(|p| **p != self.path)
                        .skip_while(|p| inode(p) != Some(self.ino))
                        .skip(1);
                    for p in newer {
                        records.extend(logdriver::read(p)?);
                    }
                }
                self.open_current()?;
                records.extend(self.drain()?);
            }
            _ => {}
        }
        Ok(records)
    }

    /// A follower at the beginning of the file the path names now (if there is one yet).
    fn at_start(path: &Path) -> std::io::Result<Follower> {
        let mut f = Follower {
            path: path.to_path_buf(),
            file: None,
            ino: 0,
            pos: 0,
            partial: Vec::new(),
        };
        f.open_current()?;
        Ok(f)
    }

    fn open_current(&mut self) -> std::io::Result<()> {
        match File::open(&self.path) {
            Ok(file) => {
                self.ino = file.metadata()?.ino();
                self.file = Some(file);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.file = None,
            Err(e) => return Err(e),
        }
        self.pos = 0;
        self.partial.clear();
        Ok(())
    }

    /// The complete lines appended to the open file since the last read.
    fn drain(&mut self) -> std::io::Result<Vec<Record>> {
        let Some(file) = self.file.as_mut() else {
            return Ok(Vec::new());
        };
        if file.metadata()?.len() < self.pos {
            // Truncated in place (by hand; the driver puts a new file in place instead): start
            // over at its beginning.
            self.pos = 0;
            self.partial.clear();
        }
        file.seek(SeekFrom::Start(self.pos))?;
        let mut buf = std::mem::take(&mut self.partial);
        let n = file.read_to_end(&mut buf)?;
        self.pos += n as u64;
        let complete = buf[..]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        // What follows the last newline waits for the rest of its line.
        self.partial = buf.split_off(complete);
        Ok(logdriver::parse_lines(&buf))
    }
}

fn inode(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::containers::logdriver::{LogOpts, Sink};
    use std::io::Write;

    fn line(i: usize) -> String {
        Record::stamped("stdout", format!("line {i}\n").as_bytes()).json_line()
    }

    fn append(p: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn logs(r: &[Record]) -> Vec<String> {
        r.iter().map(|r| r.log.trim_end().to_string()).collect()
    }

    #[test]
    fn returns_each_line_once_and_waits_for_unfinished_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        append(&log, &line(0));
        let (first, mut f) = Follower::start(&log).unwrap();
        assert_eq!(logs(&first), ["line 0"]);
        assert!(f.poll().unwrap().is_empty());
        let l1 = line(1);
        append(&log, &l1[..10]);
        assert!(f.poll().unwrap().is_empty(), "half a line is not a record");
        append(&log, &l1[10..]);
        append(&log, &line(2));
        assert_eq!(logs(&f.poll().unwrap()), ["line 1", "line 2"]);
        assert!(f.poll().unwrap().is_empty());
    }

    #[test]
    fn follows_the_log_across_the_drivers_rotations() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        // Not created yet: the follower waits for it.
        let (first, mut f) = Follower::start(&log).unwrap();
        assert!(first.is_empty());
        assert!(f.poll().unwrap().is_empty());
        // Two lines per file, four files kept, as `--log-opt max-size=.. --log-opt max-file=4`.
        let opts = LogOpts {
            max_size: 2 * line(0).len() as u64,
            max_file: 4,
            ..Default::default()
        };
        let mut sink = Sink::open(log.clone(), opts).unwrap();
        let mut write = |i: usize| sink.write(line(i).as_bytes()).unwrap();
        write(0);
        assert_eq!(logs(&f.poll().unwrap()), ["line 0"]);
        // Line 1 lands in the file just before the driver renames it to .1.
        write(1);
        write(2);
        assert_eq!(logs(&f.poll().unwrap()), ["line 1", "line 2"]);
        // Two rotations between polls: the file in between is read whole.
        for i in 3..=6 {
            write(i);
        }
        assert_eq!(
            logs(&f.poll().unwrap()),
            ["line 3", "line 4", "line 5", "line 6"]
        );
        assert!(f.poll().unwrap().is_empty());
    }

    #[test]
    fn follows_max_file_1_which_starts_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        // max-file 1: no .1; the driver puts a new empty file in place (a line of the same
        // length as the one read must not be taken for old content).
        let opts = LogOpts {
            max_size: line(0).len() as u64,
            max_file: 1,
            ..Default::default()
        };
        let mut sink = Sink::open(log.clone(), opts).unwrap();
        sink.write(line(0).as_bytes()).unwrap();
        let (first, mut f) = Follower::start(&log).unwrap();
        assert_eq!(logs(&first), ["line 0"]);
        sink.write(line(1).as_bytes()).unwrap();
        assert_eq!(logs(&f.poll().unwrap()), ["line 1"]);
    }

    #[test]
    fn from_end_skips_what_is_there_even_half_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        append(&log, &line(0));
        let mut f = Follower::from_end(&log).unwrap();
        append(&log, &line(1));
        assert_eq!(logs(&f.poll().unwrap()), ["line 1"]);
        let l2 = line(2);
        append(&log, &l2[..7]);
        let mut g = Follower::from_end(&log).unwrap();
        append(&log, &l2[7..]);
        append(&log, &line(3));
        assert_eq!(logs(&g.poll().unwrap()), ["line 3"]);
        assert_eq!(logs(&f.poll().unwrap()), ["line 2", "line 3"]);
    }

    #[test]
    fn start_reads_rotated_files_first() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        append(&PathBuf::from(format!("{}.2", log.display())), &line(0));
        append(&PathBuf::from(format!("{}.1", log.display())), &line(1));
        append(&log, &line(2));
        let (first, mut f) = Follower::start(&log).unwrap();
        assert_eq!(logs(&first), ["line 0", "line 1", "line 2"]);
        assert!(f.poll().unwrap().is_empty());
    }
}
