"""`serapp predict`'s output: one result per file as soon as it is ready, as text, a table,
CSV or JSON lines; a write that fails (a full disk) is one error, a closed pipe ends quietly."""

from __future__ import annotations

import json
import sys

from serapp.csv_cells import CsvWriter
from serapp.errors import SerappError, printable
from serapp.readout import describe

TIME_WIDTH = 10  # "1234.56 s": a file's length, right-aligned
MS_WIDTH = 8  # "12345 ms": the time it took to read
WINDOW_WIDTH = 20  # "12345.50-12348.50 s": a window of a long file


def table_columns(labels: list[str]) -> tuple[int, int, int]:
    """(EMOTION's width, one likely emotion's, the three's) for these labels, so every row of the
    table lines up under its header. The file name is the last column: its width is not known
    until every file has been read, and rows are printed as soon as each file is."""
    item = max(len(k) for k in labels) + len(" 100%")
    label = max([len(k) for k in labels] + [len("NO SPEECH"), len("EMOTION")])
    return label, item, max(3 * item + 4, len("its three most likely emotions"))


class OutputError(SerappError):
    """The results could not be written where they were sent."""


class ResultWriter:
    """Prints one result per file as soon as it is ready, in the chosen format."""

    def __init__(self, fmt: str, labels: list[str], windowed: bool, out=None):
        from serapp.timeline import timeline_header

        self.fmt, self.labels, self.windowed = fmt, labels, windowed
        self.out = out or sys.stdout
        self._csv = CsvWriter(self.out) if fmt == "csv" else None
        if self._csv:
            self._guarded(self._csv.writerow, timeline_header(labels) if windowed else
                          ["path", "duration_s", "ms", "speech", "speech_fraction", "label", "sure", *labels, "warning"])
        self._widths = table_columns(labels)
        label, _, top = self._widths
        self._header = (f"{'duration':>{TIME_WIDTH}}  {'EMOTION':<{label}}  {'its three most likely emotions':<{top}}  "
                        f"{'time':>{MS_WIDTH}}  file\n" if fmt == "table" else "")
        if fmt == "table" and windowed:
            self._header += f"{'window':>{WINDOW_WIDTH}}  reading\n"

    def write(self, result: dict, segments: list | None = None) -> None:
        self._guarded(self._write, result, segments)

    @staticmethod
    def _guarded(write, *args) -> None:
        try:
            write(*args)
        except BrokenPipeError:
            raise  # the reader left: ends quietly (main)
        except OSError as exc:  # a full disk, /dev/full, a quota: one line, and no more output
            raise OutputError(f"standard output: cannot write the results ({exc.strerror or exc}); "
                              "what was written before is incomplete") from None

    def _reading_cells(self, result: dict) -> list:
        """A file's overall reading as CSV cells, from `speech` to `warning`."""
        from serapp.timeline import NO_SPEECH, probability_cells, sure_cell

        return [int(result["speech"]), f"{result['speech_fraction']:.3f}", result["label"] or NO_SPEECH,
                sure_cell(result.get("sure")), *probability_cells(result["probabilities"], self.labels),
                result.get("warning", "")]

    def _write(self, result: dict, segments: list | None = None) -> None:
        from serapp.timeline import NO_SPEECH, timeline_rows

        if self.fmt == "jsonl":
            self.out.write(json.dumps(result) + "\n")
        elif self.fmt == "csv" and self.windowed:
            # the whole file first, its times empty (it is no window), then a row per window
            self._csv.writerow([printable(result["path"]), "", "", *self._reading_cells(result)])
            self._csv.writerows(timeline_rows(printable(result["path"]), segments, self.labels,
                                              result.get("warning", "")))
        elif self.fmt == "csv":
            self._csv.writerow([printable(result["path"]), result["duration_s"], result["ms"],
                                *self._reading_cells(result)])
        else:
            self.out.write(self._header)  # what each column is, above the first file
            self._header = ""
            label, item, width = self._widths
            if result["label"] is None:
                shown, top = NO_SPEECH.upper(), f"(speech in {result['speech_fraction']:.0%} of it)"
            else:
                ranked = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])[:3]
                shown = result["label"].upper() if result.get("sure") is not False else "NOT SURE"
                top = "  ".join(f"{f'{k} {v:.0%}':<{item}}" for k, v in ranked)
            line = (f"{result['duration_s']:>{TIME_WIDTH - 2}.2f} s  {shown:<{label}}  {top:<{width}}  "
                    f"{result['ms']:>{MS_WIDTH - 3}.0f} ms  {result['path']}")
            if result.get("warning"):
                line += f"  [warning: {result['warning']}]"
            self.out.write(printable(line) + "\n")  # a bundle's labels and a file's name: escaped, one line
            for seg in result.get("segments", []):
                what = describe(seg["label"], seg["probabilities"], seg.get("sure"))
                span = f"{seg['start_s']:.2f}-{seg['end_s']:.2f} s"
                self.out.write(f"{span:>{WINDOW_WIDTH}}  {printable(what)}\n")
        self.out.flush()
