//! One XLSX worksheet read cell by cell: calamine's streaming cell reader kept together with
//! the workbook it borrows (the shared strings and styles), so that a table reader can pull
//! cells one at a time across calls without the sheet ever being held as a grid.
//!
//! calamine's `XlsxCellReader<'b, _>` borrows the `Xlsx` it came from mutably (it reads the
//! sheet's zip entry and looks strings up in the workbook). Keeping both in one struct is
//! self-referential, which safe Rust cannot say, and `self_cell` only lends its owner shared,
//! not mutably. So this module does it by hand, in one place: the workbook lives in its own heap
//! allocation held by a raw pointer (never moved, never touched while a reader borrows it), the
//! reader is always dropped before the workbook is freed or lent out again, and no value
//! borrowed from the workbook leaves a method: each cell is handed to a closure and gone when
//! it returns.

use std::io::Cursor;
use std::ptr::NonNull;

use calamine::{DataRef, Reader, Style, Xlsx, XlsxCellReader, XlsxError};

type Book<'a> = Xlsx<Cursor<&'a [u8]>>;

/// One cell as the reader yields it: its zero-based (row, column), its value and its style.
pub(super) struct SheetCell<'c> {
    pub(super) row: u32,
    pub(super) col: u32,
    pub(super) value: &'c DataRef<'c>,
    pub(super) style: Option<&'c Style>,
}

/// A workbook and a cell reader over one of its worksheets.
pub(super) struct SheetCells<'a> {
    /// Borrows `*book`; `None` only between a `restart`'s drop and its reopen.
    reader: Option<XlsxCellReader<'a, Cursor<&'a [u8]>>>,
    /// From `Box::into_raw`; freed in `Drop`, after `reader`.
    book: NonNull<Book<'a>>,
    sheet: String,
}

impl<'a> SheetCells<'a> {
    /// Takes `book` and opens a reader over its worksheet `sheet`.
    pub(super) fn open(book: Book<'a>, sheet: &str) -> Result<SheetCells<'a>, XlsxError> {
        let mut cells = SheetCells {
            reader: None,
            book: NonNull::from(Box::leak(Box::new(book))),
            sheet: sheet.to_string(),
        };
        cells.restart()?;
        Ok(cells)
    }

    /// Starts again at the sheet's first cell.
    pub(super) fn restart(&mut self) -> Result<(), XlsxError> {
        // The old reader's borrow of the workbook ends here, before a new one begins.
        self.reader = None;
        // SAFETY: `book` points to a live workbook (freed only in `Drop`), and no other
        // reference to it exists: the one reader that borrowed it was just dropped. The borrow
        // is given the struct's lifetime but is stored only in `self.reader`, which `Drop` ends
        // before the workbook is freed.
        let book: &'a mut Book<'a> = unsafe { &mut *self.book.as_ptr() };
        self.reader = Some(book.worksheet_cells_reader(&self.sheet)?);
        Ok(())
    }

    /// Hands the next cell in file order to `each`; `Ok(None)` at the end of the sheet.
    pub(super) fn next<R>(
        &mut self,
        each: impl FnOnce(SheetCell<'_>) -> R,
    ) -> Result<Option<R>, XlsxError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        let Some((cell, style_id)) = reader.next_cell_with_style_id()? else {
            return Ok(None);
        };
        let (row, col) = cell.get_position();
        // Style 0 is the default format, as calamine's `StyleRange` treats it.
        let style = (style_id > 0)
            .then(|| reader.styles().get(style_id))
            .flatten();
        Ok(Some(each(SheetCell {
            row,
            col,
            value: cell.get_value(),
            style,
        })))
    }
}

impl Drop for SheetCells<'_> {
    fn drop(&mut self) {
        self.reader = None;
        // SAFETY: `book` came from `Box::into_raw` (via `Box::leak`) in `open` and is freed
        // only here, once; the reader that borrowed it is gone.
        drop(unsafe { Box::from_raw(self.book.as_ptr()) });
    }
}

/// Reads the workbook's structure (sheet list, shared strings, styles).
pub(super) fn book(bytes: &[u8]) -> Result<Book<'_>, XlsxError> {
    Xlsx::new(Cursor::new(bytes))
}
