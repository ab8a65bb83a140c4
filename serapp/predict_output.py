"""`serapp predict`'s output: one result per file as soon as it is ready, as text, a table,
CSV or JSON lines; a write that fails (a full disk) is one error, a closed pipe ends quietly."""

from __future__ import annotations

import json
import sys

from serapp.csv_cells import CsvWriter
from serapp.errors import SerappError, printable
from serapp.readout import describe

TABLE_HEADER = "file  duration  EMOTION  its three most likely emotions  (time to read)\n"
TABLE_WINDOW_HEADER = "    window start-end  emotion  probability\n"


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
        self._header = TABLE_HEADER + (TABLE_WINDOW_HEADER if windowed else "") if fmt == "table" else ""

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

    def _write(self, result: dict, segments: list | None = None) -> None:
        from serapp.timeline import NO_SPEECH, probability_cells, sure_cell, timeline_rows

        if self.fmt == "jsonl":
            self.out.write(json.dumps(result) + "\n")
        elif self.fmt == "csv" and self.windowed:
            self._csv.writerows(timeline_rows(printable(result["path"]), segments, self.labels,
                                              result.get("warning", "")))
        elif self.fmt == "csv":
            self._csv.writerow([printable(result["path"]), result["duration_s"], result["ms"], int(result["speech"]),
                                result["speech_fraction"], result["label"] or NO_SPEECH, sure_cell(result.get("sure")),
                                *probability_cells(result["probabilities"], self.labels), result.get("warning", "")])
        else:
            self.out.write(self._header)  # what each column is, above the first file
            self._header = ""
            line = f"{printable(result['path'])}  {result['duration_s']:.2f}s  "
            if result["label"] is None:
                line += f"{NO_SPEECH.upper():<10} (speech in {result['speech_fraction']:.0%} of it)"
            else:
                top = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])[:3]
                shown = result["label"].upper() if result.get("sure") is not False else "NOT SURE"
                line += f"{shown:<10} " + "  ".join(f"{k} {v:.0%}" for k, v in top)
            line += f"  ({result['ms']:.0f} ms)"
            if result.get("warning"):
                line += f"  [warning: {result['warning']}]"
            self.out.write(printable(line) + "\n")  # a bundle's labels and a file's name: escaped, one line
            for seg in result.get("segments", []):
                what = describe(seg["label"], seg["probabilities"], seg.get("sure"))
                self.out.write(f"    {seg['start_s']:7.2f}-{seg['end_s']:7.2f}s  {printable(what)}\n")
        self.out.flush()
