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

want = ["Сводка", "Магазины", "Категории", "Комментарии", "Продажи", "Методика"]
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

for name, n in (("Категории", 2), ("Продажи", 1)):
    ws = wb[name]
    if len(ws._charts) != n:
        sys.exit(f"{name}: {len(ws._charts)} charts, want {n}")

stores = wb["Магазины"]
if stores.cell(row=1, column=13).value != "ИКУ":
    sys.exit(f"Магазины: column M is {stores.cell(row=1, column=13).value!r}, want ИКУ")
if stores.freeze_panes != "A2" or not stores.auto_filter.ref:
    sys.exit(f"Магазины: header not frozen ({stores.freeze_panes}) or no filter ({stores.auto_filter.ref})")

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
