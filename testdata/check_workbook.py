#!/usr/bin/python3
"""Open an otklik workbook with an independent reader (openpyxl) and check it.

Usage: check_workbook.py FILE [MIN_ANSWERS]
Exits non-zero with a message naming what is wrong.
"""
import sys
import warnings

import openpyxl

warnings.simplefilter("error")  # a warning while reading means Excel might complain too

path = sys.argv[1]
min_answers = int(sys.argv[2]) if len(sys.argv) > 2 else 0
wb = openpyxl.load_workbook(path)

want = ["Сводка", "Категории", "Продажи"]
if wb.sheetnames[: len(want)] != want:
    sys.exit(f"sheets are {wb.sheetnames}, want {want} first")

summary = wb["Сводка"]
labels = {summary.cell(row=r, column=1).value: summary.cell(row=r, column=2).value for r in range(1, 20)}
answers = labels.get("Ответов получено")
if not isinstance(answers, int) or answers < min_answers:
    sys.exit(f"Сводка: 'Ответов получено' is {answers!r}, want an integer >= {min_answers}")
sent = labels.get("Приглашений отправлено")
if not isinstance(sent, int):
    sys.exit(f"Сводка: 'Приглашений отправлено' is {sent!r}")

for name in ("Категории", "Продажи"):
    ws = wb[name]
    if len(ws._charts) != 1:
        sys.exit(f"{name}: {len(ws._charts)} charts, want 1")

cats = wb["Категории"]
months = [cats.cell(row=r, column=1).value for r in range(2, 14)]
if len(set(months)) != 12 or any(not isinstance(m, str) for m in months):
    sys.exit(f"Категории: months column is {months}")

for ws in wb.worksheets:
    for row in ws.iter_rows():
        for c in row:
            if c.data_type == "f":
                sys.exit(f"{ws.title}!{c.coordinate} is a formula: {c.value!r}")

print(f"ok: {path}: {sent} sent, {answers} answers")
