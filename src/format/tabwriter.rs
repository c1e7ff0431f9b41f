//! Docker's table alignment: Go's text/tabwriter (elastic tabstops) as Docker's formatter sets
//! it up (minimum cell width 10, padding 3, spaces). Cells end with a tab; a column is the run
//! of adjacent lines that have a cell at that index, as wide as its widest cell plus padding.
//! Widths count characters.

/// Docker's settings: `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)`.
pub const MIN_WIDTH: usize = 10;
pub const PADDING: usize = 3;

/// Aligns tab-separated `text` as Docker prints tables.
pub fn align(text: &str) -> String {
    align_with(text, MIN_WIDTH, PADDING)
}

/// Aligns tab-terminated cells with the given minimum width and padding.
pub fn align_with(text: &str, min_width: usize, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut w = Writer {
        lines: &lines,
        min_width,
        padding,
        out: String::new(),
    };
    let mut widths = Vec::new();
    w.format(&mut widths, 0, lines.len());
    w.out
}

struct Writer<'a> {
    lines: &'a [Vec<&'a str>],
    min_width: usize,
    padding: usize,
    out: String,
}

fn width(cell: &str) -> usize {
    cell.chars().count()
}

impl Writer<'_> {
    /// Go's tabwriter `format`: finds each block of lines with a cell in the next column, sizes
    /// that column, and recurses for the columns right of it.
    fn format(&mut self, widths: &mut Vec<usize>, mut line0: usize, line1: usize) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(widths, line0, this);
            line0 = this;
            let mut col_width = self.min_width;
            while this < line1 && column + 1 < self.lines[this].len() {
                col_width = col_width.max(width(self.lines[this][column]) + self.padding);
                this += 1;
            }
            widths.push(col_width);
            self.format(widths, line0, this);
            widths.pop();
            line0 = this;
        }
        self.write_lines(widths, line0, line1);
    }

    fn write_lines(&mut self, widths: &[usize], line0: usize, line1: usize) {
        for i in line0..line1 {
            for (j, cell) in self.lines[i].iter().enumerate() {
                self.out.push_str(cell);
                if let Some(w) = widths.get(j) {
                    let pad = w.saturating_sub(width(cell));
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            // The text after the last newline is an unfinished line: no newline for it.
            if i + 1 < self.lines.len() {
                self.out.push('\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_as_docker_aligns_them() {
        assert_eq!(
            align("NAMES\tSTATUS\nweb\tUp 2 seconds\nlong-container-name\tExited (0)\n"),
            "NAMES                 STATUS\n\
             web                   Up 2 seconds\n\
             long-container-name   Exited (0)\n"
        );
        // The minimum width, and empty cells padded like any other.
        assert_eq!(
            align("A\tB\tC\n\t\tx\n"),
            "A         B         C\n                    x\n"
        );
        // No tab: nothing to align.
        assert_eq!(align("ID\nabc\n"), "ID\nabc\n");
    }

    #[test]
    fn a_column_is_a_block_of_adjacent_lines() {
        // Go's documented example: b and c are in distinct columns.
        let got = align_with("aaaa\tbbb\td\naa\tb\tdd\na\t\naa\tcccc\teee\n", 0, 1);
        assert_eq!(got, "aaaa bbb d\naa   b   dd\na    \naa   cccc eee\n");
    }
}
