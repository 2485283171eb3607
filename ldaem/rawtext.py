"""Raw-text corpora as streams of named documents: the lines of a file, the files of a folder, the
records of JSON Lines or CSV. Nothing holds the whole corpus: each document is read and decoded
when the vectoriser asks for the next one. An undecodable byte is an error naming the file, the
line and the byte offset, unless errors="replace".

Each reader yields (name, text) pairs; a name of None means "named by its number" (1, 2, ...).
"""

import codecs
import csv
import json
import os
from pathlib import Path

from ldaem.errors import CorpusError, unreadable_is_corpus_error
from ldaem.fileio import open_binary

ENCODING_ERRORS = ("strict", "replace", "ignore")
_CSV_FIELD_LIMIT = 2**31 - 1       # a document may be longer than csv's default 128 KiB


def check_encoding(encoding, errors):
    """Fail early, naming the option, when the encoding or the error handler is unknown."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise CorpusError(f"unknown encoding {encoding!r} (--encoding)") from None
    if errors not in ENCODING_ERRORS:
        raise CorpusError(f"unknown --encoding-errors {errors!r} (known: {', '.join(ENCODING_ERRORS)})")


def decode(raw, path, encoding="utf-8", errors="strict", lineno=1, offset=0, replaceable=True):
    """raw bytes as text (a byte-order mark dropped); raw starts at line lineno, byte offset of the
    file. An undecodable byte is a CorpusError naming its line and offset, and suggesting
    --encoding-errors replace if replaceable (it is not in numbers)."""
    try:
        text = raw.decode(encoding, errors)
    except UnicodeDecodeError as e:
        line = lineno + raw.count(b"\n", 0, e.start)
        way_out = "--encoding, or --encoding-errors replace" if replaceable else "--encoding"
        raise CorpusError(f"{path}:{line}: byte 0x{raw[e.start]:02x} at offset {offset + e.start} "
                          f"is not valid {encoding} (choose another with {way_out})") from None
    return text[1:] if offset == 0 and text.startswith("\ufeff") else text


def decoded_lines(path, encoding="utf-8", errors="strict", keepends=False):
    """(line number, text) of each line of path, decoded with a clear error."""
    offset = 0
    with open_binary(path) as f:
        for lineno, raw in enumerate(f, 1):
            line = decode(raw, path, encoding, errors, lineno, offset)
            offset += len(raw)
            yield lineno, (line if keepends else line.rstrip("\r\n"))


def line_documents(path, encoding, errors, separator=None):
    """One document per line, or, with a separator, documents separated by lines holding only it
    (a fortune file's `%`), each named by the number of its first line."""
    lines = decoded_lines(path, encoding, errors)
    if separator is None:
        return ((None, line) for _, line in lines)
    return _separated(lines, separator, prefix="")


def _separated(lines, separator, prefix):
    text, first = [], None
    for lineno, line in lines:
        if line.strip() == separator:
            yield f"{prefix}{first or lineno}", "\n".join(text)
            text, first = [], None
        else:
            first = first or lineno
            text.append(line)
    if any(line.strip() for line in text):     # what follows the last separator, unless blank
        yield f"{prefix}{first}", "\n".join(text)


def folder_files(root):
    """The files under root, searched recursively, in the order of their relative paths; hidden
    files and folders (a name starting with '.') are skipped."""
    root = Path(root)
    found = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        found.extend(Path(folder, name) for name in files if not name.startswith("."))
    return sorted(found, key=lambda path: path.relative_to(root).parts)


def folder_documents(root, encoding, errors, separator=None):
    """One document per file, named by its path relative to root (files ending .gz are
    decompressed); with a separator, each file holds several, named PATH:LINE."""
    for path in folder_files(root):
        name = path.relative_to(root).as_posix()
        if separator is None:
            with unreadable_is_corpus_error(path), open_binary(path) as f:
                text = f.read()
            yield name, decode(text, path, encoding, errors)
        else:
            with unreadable_is_corpus_error(path):
                yield from _separated(decoded_lines(path, encoding, errors), separator, prefix=f"{name}:")


def jsonl_documents(path, encoding, errors, text_field="text", id_field=None):
    """One JSON object per line (blank lines skipped); the text is in text_field, the name in
    id_field, else the line number."""
    for lineno, line in decoded_lines(path, encoding, errors):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{where}: not valid JSON ({e.msg}, column {e.colno})") from None
        if not isinstance(record, dict):
            raise CorpusError(f"{where}: expected a JSON object, found {type(record).__name__}")
        name = str(lineno) if id_field is None else _name(record, id_field, where, "field", "--id-field")
        yield name, _text(record, text_field, where, "field")


def csv_documents(path, encoding, errors, text_field="text", id_field=None, delimiter=","):
    """One record per row after a header row naming the columns; the text is in column
    text_field, the name in column id_field, else the number of the row's first line."""
    lines = (line for _, line in decoded_lines(path, encoding, errors, keepends=True))
    reader = csv.reader(lines, delimiter=delimiter)
    limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        header = next(reader, None)
        if header is None:
            return
        columns = {name: i for i, name in enumerate(header)}
        where = f"{path}:{reader.line_num}"
        text_column = _column(columns, text_field, where, "--text-field")
        id_column = None if id_field is None else _column(columns, id_field, where, "--id-field")
        end = reader.line_num
        for row in reader:
            start, end = end + 1, reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                raise CorpusError(f"{path}:{start}: {len(row)} fields, but the header has {len(header)}")
            yield (str(start) if id_column is None else row[id_column]), row[text_column]
    except csv.Error as e:
        raise CorpusError(f"{path}:{reader.line_num}: {e}") from None
    finally:
        csv.field_size_limit(limit)


def _column(columns, name, where, option):
    if name not in columns:
        raise CorpusError(f"{where}: no column {name!r} in the header "
                          f"({', '.join(map(repr, columns))}; choose one with {option})")
    return columns[name]


def _text(record, field, where, kind):
    if field not in record:
        raise CorpusError(f"{where}: no {kind} {field!r} (the record has "
                          f"{', '.join(map(repr, record)) or 'none'}; choose one with --text-field)")
    text = record[field]
    if text is None:
        return ""
    if not isinstance(text, str):
        raise CorpusError(f"{where}: {kind} {field!r} holds a {type(text).__name__}, not text")
    return text


def _name(record, field, where, kind, option):
    if field not in record:
        raise CorpusError(f"{where}: no {kind} {field!r} to name the document (choose one with {option})")
    name = record[field]
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        raise CorpusError(f"{where}: {kind} {field!r} holds {json.dumps(name)}, not a name")
    return str(name)
