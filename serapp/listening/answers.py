"""The listening-test answer file: one CSV row per answer, durable the moment it is written.

Every row is appended, flushed and fsynced before the next clip is offered, so a session
killed at any moment keeps every answered row. Cells follow serapp.csv_cells (formula
escaping, a CR quoted). A line that cannot be read costs that line only: the reader keeps
every answer before and after it and names the line.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from dataclasses import astuple, dataclass
from datetime import datetime, timezone
from pathlib import Path

from serapp.csv_cells import CsvWriter, unescape_cell
from serapp.errors import SerappError, printable
from serapp.files import decode_utf8, special_kind

COLUMNS = ("session_id", "rater", "timestamp_utc", "corpus", "clip", "true_label", "chosen_label", "correct",
           "response_ms", "replays", "skipped", "skip_reason", "label_set", "app_version")
_INT_FIELDS = {"correct", "replays", "skipped"}
# ASCII digits only (str.isdigit also takes "²", which int() refuses); 10 digits: four months
_COUNT = re.compile(r"[0-9]{1,6}")
_MILLISECONDS = re.compile(r"-?[0-9]{1,10}")
# The largest answer file read (about 5 million answers): a device or a runaway file is refused, not read
MAX_FILE_BYTES = 1 << 30
# The longest text cell written (a decoder's message can be long); well under the csv module's
# default field limit of 131,072 characters, so the reader always takes what the writer wrote.
MAX_CELL = 4000


class AnswerFileError(SerappError):
    """An answer CSV that cannot be read; the message names the file and, when it is about
    the content, the line."""

    def __init__(self, path, line: int | None, reason: str):
        super().__init__(f"{path}: line {line}: {reason}" if line else f"{path}: {reason}")


@dataclass(frozen=True)
class Answer:
    session_id: str
    rater: str
    timestamp_utc: str
    corpus: str  # the corpus root folder
    clip: str  # path relative to the corpus root, with forward slashes
    true_label: str
    chosen_label: str  # "" when skipped
    correct: int
    response_ms: int | None  # from the end of the first playback; None when never played
    replays: int
    skipped: int
    skip_reason: str
    label_set: str  # the included labels joined by "|"
    app_version: str

    @property
    def labels(self) -> list[str]:
        return self.label_set.split("|")

    @property
    def key(self) -> tuple[str, str]:
        return (self.corpus, self.clip)


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def file_name_part(text: str, fallback: str = "x") -> str:
    """`text` as part of a file name any file system takes: runs of other characters as "_"."""
    return re.sub(r"[^\w.-]+", "_", text).strip("_.")[:60] or fallback


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 1] + "…"


def _cells(answer: Answer) -> list[str]:
    out = []
    for value in astuple(answer):
        if value is None:
            out.append("")
        elif isinstance(value, str):
            out.append(_bounded(value))
        else:
            out.append(str(int(value)))
    return out


def format_row(answer: Answer) -> str:
    buf = io.StringIO()
    CsvWriter(buf).writerow(_cells(answer))
    return buf.getvalue()


def _parse_row(path, line: int, row: list[str]) -> Answer:
    if len(row) != len(COLUMNS):
        raise AnswerFileError(path, line, f"expected {len(COLUMNS)} fields, found {len(row)}")
    values: dict = {}
    for name, cell in zip(COLUMNS, row):
        if "\x00" in cell:
            raise AnswerFileError(path, line, f"{name} holds a NUL character")
        if name in _INT_FIELDS:
            if cell not in ("0", "1") and not (name == "replays" and _COUNT.fullmatch(cell)):
                raise AnswerFileError(path, line, f"{name} must be {'a count' if name == 'replays' else '0 or 1'}, not {cell!r}")
            values[name] = int(cell)
        elif name == "response_ms":
            if cell and not _MILLISECONDS.fullmatch(cell):
                raise AnswerFileError(path, line, f"response_ms must be whole milliseconds, not {cell!r}")
            values[name] = int(cell) if cell else None
        else:
            values[name] = unescape_cell(cell)
    a = Answer(**values)
    try:
        datetime.fromisoformat(a.timestamp_utc.replace("Z", "+00:00"))
    except ValueError:
        raise AnswerFileError(path, line, f"timestamp_utc {a.timestamp_utc!r} is not ISO 8601") from None
    if not a.clip or not a.true_label:
        raise AnswerFileError(path, line, "clip and true_label must not be empty")
    if a.true_label not in a.labels:
        raise AnswerFileError(path, line, f"true_label {a.true_label!r} is not in label_set {a.label_set!r}")
    if a.skipped:
        if a.chosen_label or a.correct:
            raise AnswerFileError(path, line, "a skipped row has no chosen_label and correct 0")
    else:
        if a.chosen_label not in a.labels:
            raise AnswerFileError(path, line, f"chosen_label {a.chosen_label!r} is not in label_set {a.label_set!r}")
        if a.correct != int(a.chosen_label == a.true_label):
            raise AnswerFileError(path, line, f"correct is {a.correct} but {a.chosen_label!r} vs true {a.true_label!r}")
    return a


def check_answer(answer: Answer, what: str = "answer") -> Answer:
    """The answer as the reader reads it back: its row, as written, parsed by the reader's own
    rules, so a value that no answer file could hold is refused before it is written
    (AnswerFileError naming `what` and the cell)."""
    row = next(csv.reader(io.StringIO(format_row(answer), newline="")))
    return _parse_row(what, None, row)


def read_answers(path: str | Path, problems: list[str] | None = None) -> list[Answer]:
    """Every readable row of an answer file. A defect of the whole file is an AnswerFileError
    naming it; a bad line is one too, unless `problems` is given: then each bad line is added
    there (naming the file and the line) and every answer before and after it is kept."""
    path = Path(path)
    text = _read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise AnswerFileError(path, 1, f"malformed CSV: {exc}") from None
    if header is None:
        raise AnswerFileError(path, 1, "empty file, expected the header " + ",".join(COLUMNS))
    if tuple(h.strip() for h in header) != COLUMNS:
        raise AnswerFileError(path, 1, f"not an answer file: wrong header (expected {','.join(COLUMNS)}, "
                                       f"found {printable(','.join(header))[:200]})")
    rows = []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader, None)
            if row is None:
                break
            if row:
                rows.append(_parse_row(path, start, row))
        except csv.Error as exc:
            bad = AnswerFileError(path, start, f"malformed CSV: {exc}")
        except AnswerFileError as exc:
            bad = exc
        else:
            continue
        if problems is None:
            raise bad
        problems.append(str(bad))
    return rows


def _read_text(path: Path) -> str:
    """The file as text; a FIFO or a device is refused before it is opened, and a file over
    MAX_FILE_BYTES before it is read."""
    try:
        kind = special_kind(path)
        if kind is not None:
            raise AnswerFileError(path, None, f"{kind}, not a regular file (not opened: reading it could wait forever)")
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise AnswerFileError(path, None, "is a folder, not an answer file")
        if info.st_size > MAX_FILE_BYTES:
            raise AnswerFileError(path, None, f"{info.st_size} bytes, more than an answer file holds "
                                              f"(at most {MAX_FILE_BYTES >> 20} MiB)")
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise AnswerFileError(path, None, "no such file") from None
    except PermissionError:
        raise AnswerFileError(path, None, "permission denied (cannot read it)") from None
    except OSError as exc:
        raise AnswerFileError(path, None, f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise AnswerFileError(path, None, f"more than an answer file holds (at most {MAX_FILE_BYTES >> 20} MiB)")
    text, bad = decode_utf8(data)
    if bad is not None and bad[0] == 1:  # not even its header is text: another kind of file (x.wav)
        raise AnswerFileError(path, None, f"not an answer file: line 1 is {bad[1]}")
    if bad is not None:
        raise AnswerFileError(path, bad[0], f"{bad[1]}; answer files are written as UTF-8")
    return text


class AnswerLog:
    """Append-only answer file for a running test. Opening it reads what is already there
    (for resuming) and repairs a torn last line, which only a crash mid-write can leave. A line
    that cannot be read is named in `problems` and left as it is; the others are kept."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.repaired = ""
        self.rows: list[Answer] = []
        self.problems: list[str] = []
        if self.path.exists() and not self.path.is_file():
            _read_text(self.path)  # a folder, FIFO or device: refused in one line, never opened
        if self.path.is_file() and self.path.stat().st_size > 0:
            self._repair_tail()
            self.rows = read_answers(self.path, self.problems)

    def _repair_tail(self) -> None:
        data = self.path.read_bytes()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        torn = data[keep:].decode("utf-8", "replace")
        with open(self.path, "r+b") as f:
            f.truncate(keep)
            os.fsync(f.fileno())
        self.repaired = f"removed an incomplete last line ({torn[:60]!r}); that clip will be offered again"

    def append(self, answer: Answer) -> None:
        """Append one row (with the header, for a new file) and fsync it; on any failure the
        file is cut back to what it was, so no torn row stays behind for the retry to follow. A row
        the reader would refuse is refused here first (AnswerFileError), so the file always reads back."""
        check_answer(answer, printable(self.path))
        new = not self.path.is_file() or self.path.stat().st_size == 0
        if new:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        data = ((",".join(COLUMNS) + "\n" if new else "") + format_row(answer)).encode("utf-8")
        # One os.write on an O_APPEND descriptor: no buffer that a later truncate would flush first.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            size = os.fstat(fd).st_size
            try:
                done = 0
                while done < len(data):  # a short write (the disk filling up) is followed by the error
                    done += os.write(fd, data[done:])
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, size)
                os.fsync(fd)
                raise
        finally:
            os.close(fd)
        if new and hasattr(os, "O_DIRECTORY"):  # the new directory entry must survive a crash too
            fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        self.rows.append(answer)
