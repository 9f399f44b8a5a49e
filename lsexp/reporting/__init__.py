"""Reporting: a sweep folder's runs -> metrics per run -> tables, figures and an HTML page.

`report.write_report` is the entry point; it reads runs through `results.store` and
computes with `analysis`, then writes tables (`tables`), figures (`figures`, drawn on
Axes by `plots`) and the page (`html`) into `<sweep>/report/`, built in a temporary
folder and swapped in whole.
"""
