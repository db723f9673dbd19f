//! Go's `text/tabwriter` (flags 0, space padding), so our tables are byte-for-byte kubeadm's.
//!
//! Cells are tab-terminated; text after a line's last tab is not part of a column. A column block is a
//! run of consecutive lines that have a cell in that column; its width is the widest cell plus padding,
//! at least `minwidth`. Blocks are found recursively, column by column, exactly as Go's `format` does.

pub struct TabWriter {
    minwidth: usize,
    padding: usize,
}

impl TabWriter {
    /// `tabwriter.NewWriter(w, minwidth, tabwidth, padding, ' ', 0)`; tabwidth only matters for tab
    /// padding, which kubeadm does not use.
    pub fn new(minwidth: usize, padding: usize) -> TabWriter {
        TabWriter { minwidth, padding }
    }

    pub fn format(&self, text: &str) -> String {
        let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
        let mut out = String::new();
        let mut widths = Vec::new();
        self.block(&lines, 0, lines.len(), &mut widths, &mut out);
        out
    }

    fn block(&self, lines: &[Vec<&str>], mut line0: usize, line1: usize, widths: &mut Vec<usize>, out: &mut String) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // a cell in this column: lines before it are complete
            write_lines(lines, line0, this, widths, out);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 && column + 1 < lines[this].len() {
                width = width.max(lines[this][column].chars().count() + self.padding);
                this += 1;
            }
            widths.push(width);
            self.block(lines, line0, this, widths, out);
            widths.pop();
            line0 = this;
        }
        write_lines(lines, line0, line1, widths, out);
    }
}

fn write_lines(lines: &[Vec<&str>], from: usize, to: usize, widths: &[usize], out: &mut String) {
    for (i, line) in lines.iter().enumerate().take(to).skip(from) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if j < widths.len() && j + 1 < line.len() {
                let pad = widths[j].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        // Go buffers the text after the last newline: no newline after the final (empty) line
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_blocks_like_go() {
        let tw = TabWriter::new(10, 3);
        let got = tw.format("A\tBB\tlast\nCCCCCCCCCCCC\tD\tx\n\nE\tF\ny\n");
        // column 0: max(12+3, 10) = 15; column 1: max(2+3, 10) = 10; then a blank line ends the block
        let want = "A              BB        last\nCCCCCCCCCCCC   D         x\n\nE         F\ny\n";
        assert_eq!(got, want);
    }
}
