"""Write ``hostile/``: a canonical-profile source where nearly every line is a known bad input.

The files hold bytes an editor would mangle (NUL, a cp1252 line inside a UTF-8 file,
a byte-order mark in the middle), so they are written by this script and checked in;
run ``python tests/data/bad_inputs/make_hostile.py`` after changing a case. What each
line is, and where it must end up, is listed in ``tests/test_validation_corpus.py``
(``HOSTILE``) and in ``README.md`` here.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent / "hostile"
LONG_NAME = "Long Name Trading " + "x" * 282  # 300 characters: customer_name holds 255
FORMULA = "=1+cmd|' /C calc'!A0"


def utf8(lines: list[str]) -> bytes:
    """Return the lines as UTF-8 bytes, one per line, LF-terminated."""
    return "".join(line + "\n" for line in lines).encode("utf-8")


FILES: dict[str, bytes] = {
    "offices.csv": utf8(
        [
            "office_id,city,state,country,territory,postal_code",  # 1
            "1,Lyon,,France,EMEA,69001",  # 2
            "2,Zürich,,Switzerland,EMEA,8001",  # 3
            ",,,,,",  # 4 padding: skipped
            "",  # 5 blank: skipped
            "3,Oslo,,Norway,EMEA,0150",  # 6
            "4,Paris,,France,EMEA,75001,extra",  # 7 one field too many: field_count
            "5\x00,Rome,,Italy,EMEA,00100",  # 8 NUL in the key: control_character
            "6,Lisbon,,Portugal,EMEA," + "1" * 33,  # 9 postal_code holds 32: text_too_long
        ]
    ),
    "employees.csv": utf8(
        [
            "employee_id,first_name,last_name,job_title,office_id,manager_id,email,hire_date",  # 1
            "10,Ana,Silva,Manager,1,,ana@example.com,2019-03-01",  # 2
            "11,Bob,Stone,Sales Rep,1,10,bob@example.com,2020-07-15",  # 3
            "12,Cy,Old,Clerk,1,10,cy@example.com,1899-12-31",  # 4 hired before 1900
            "14,Di,Zero,Clerk,1,10,di@example.com,0001-01-01",  # 5 year 0001
            '15,Ed,Tab,"Clerk\tNight",1,10,ed@example.com,2021-01-01',  # 6 tab in short text
            f'17,"{FORMULA.replace(chr(34), chr(34) * 2)}",Formula,Clerk,1,10,f@example.com,2021-02-02',  # 7
            "18,Gil,Future,Clerk,1,10,gil@example.com,9999-12-31",  # 8 year 9999
        ]
    ),
    "customers.csv": utf8(
        [
            "customer_id,customer_name,contact_name,city,state,country,postal_code,sales_rep_id,credit_limit",
            "C1,Alpha Toys,Jo Ray,Paris,,France,75001,10,5000",  # 2
            "C2,Café Zürich,Ann Weiß,Zürich,,Switzerland,8001,10,1000",  # 3 UTF-8
        ]
    )
    + "C3,Müller AG,Hans Müller,Zürich,,Switzerland,3000,10,2000\n".encode("cp1252")  # 4 cp1252 line
    + utf8(
        [
            f"C4,{LONG_NAME},Al Poe,Oslo,,Norway,0150,11,100",  # 5 300 characters
            "C5,Inf Corp,,Oslo,,Norway,,11,inf",  # 6
            "C6,NaN Corp,,Oslo,,Norway,,11,NaN",  # 7
            "C7,Huge Corp,,Oslo,,Norway,,11,1e20",  # 8 DECIMAL(18,2) holds < 1e16
            "C8,Vast Corp,,Oslo,,Norway,,11,1e300",  # 9
            "C9,Nine Upper,,Oslo,,Norway,,11,100",  # 10 C9 and c9: one key on SQL Server
            "c9,Nine Lower,,Oslo,,Norway,,11,100",  # 11
            "\ufeffC10,Bom Corp,,Oslo,,Norway,,11,100",  # 12 byte-order mark glued to the key
            "C11,Scale Corp,,Oslo,,Norway,,11,12.345",  # 13 three decimals in DECIMAL(18,2)
            'C12,"=HYPERLINK(""http://x"",""y"")",,Oslo,,Norway,,11,100',  # 14 formula: data
            'C13,"+SUM(A1:A2)",,Oslo,,Norway,,11,100',  # 15 formula: data
            'C14,"@SUM(1+1)",,Oslo,,Norway,,11,100',  # 16 formula: data
            "C15,\"-2+3+cmd|' /C calc'!A0\",,Oslo,,Norway,,11,100",  # 17 formula: data
            "CÄ1,Composed,,Oslo,,Norway,,11,100",  # 18 NFC
            "CA\u03081,Decomposed,,Oslo,,Norway,,11,100",  # 19 NFD of the same key
            "C16,Zero\u200bWidth,,Oslo,,Norway,,11,100",  # 20 zero-width space
            "C17,Bell\x07Corp,,Oslo,,Norway,,11,100",  # 21 control character
            "C18,Neg Inf,,Oslo,,Norway,,11,-Infinity",  # 22
            "C19,Lots Corp,,Oslo,,Norway,,11,lots",  # 23 not a number
            "C20,Rep Unknown,,Oslo,,Norway,,99,100",  # 24 unknown sales rep
            "C21,Too,Few,Fields",  # 25 field_count
        ]
    ),
    "product_lines.csv": utf8(
        [
            "product_line_id,name,description",  # 1
            f'PL1,Puzzles,"{FORMULA.replace(chr(34), chr(34) * 2)} and other formulas"',  # 2 formula: data
            'PL2,Games,"Board games',  # 3 a quoted line break: lines 3-4 are one record
            'and card games"',  # 4
            "PL3,Cars,Classic cars",  # 5
            "PL4,Bad,Description with a NUL \x00 inside",  # 6 NUL in long text: rejected, cascades
            "PL5,Trains," + "t" * 5000,  # 7 long text has no limit
        ]
    ),
    "products.csv": utf8(
        [
            "product_id,product_name,product_line_id,vendor,unit_cost,list_price,quantity_in_stock",  # 1
            "P1,Castle,PL1,Ravenwood,7.50,19.90,120",  # 2
            "P2,Ocean,PL1,Ravenwood,4.00,12.50,80",  # 3
            "P3,Chess,PL2,Kingmaker,15.00,39.00,30",  # 4
            "P4,Wagon,PL4,Kingmaker,5.00,9.00,10",  # 5 product line PL4 rejected: cascade
            "P5,Pricey,PL3,Kingmaker,1e20,9.00,10",  # 6
            "P6,Sunk,PL3,Kingmaker,5.00,-inf,10",  # 7
            "P7,Stocky,PL3,Kingmaker,5.00,9.00,99999999999999999999",  # 8 beyond BIGINT
            "P8,Loco,PL5,Kingmaker,5.00,9.00,10",  # 9
            "P9,Odd,PL3,Kingmaker,5.00,9.00,3.5",  # 10 not a whole number
        ]
    ),
    "orders.csv": utf8(
        [
            "order_id,customer_id,employee_id,order_date,required_date,shipped_date,status,ship_city,ship_country",
            "1001,C1,10,2024-01-05,2024-01-12,2024-01-08,shipped,Paris,France",  # 2
            '1002,C1,10,2024-01-09,2024-01-16,,placed,"Paris,France',  # 3 unclosed quote
            "1003,C2,11,2024-01-10,2024-01-17,2024-01-11,shipped,Zürich,Switzerland",  # 4 recovered
            "1004,C2,11,2024-01-11,2024-01-18,2024-01-12,shipped,Zürich,Switzerland",  # 5 recovered
            "1005,C1,10,2024-02-01,2024-02-08,9999-12-31,shipped,Paris,France",  # 6 shipped in 9999
            "1006,C1,10,2024-02-02,2030-01-01,,placed,Paris,France",  # 7 required 6 years later
            "1007,C1,10,2024-02-03,2024-02-10,2026-03-01,shipped,Paris,France",  # 8 shipped 2 years later
            "1008,C1,10,2024-03-01T00:30:00+02:00,,,placed,Paris,France",  # 9 in UTC: Feb 29; the written
            "1009,C1,10,2024-03-02T00:30:00-05:00,,,placed,Paris,France",  # 10 day is kept, no shift
            "1010,C4,10,2024-03-03,,,placed,Oslo,Norway",  # 11 customer C4 rejected: cascade
            "1011,C12,10,2024-03-04,,,placed,Oslo,Norway",  # 12 formula customer: loads
            "1012,C1,10,2024-03-05,,,placed,Paris",  # 13 one field short
            "",  # 14 blank
            '1013,C1,10,2024-03-06,,,placed,Paris,"France',  # 15 unclosed quote on the last line
        ]
    ),
    "order_items.csv": utf8(
        [
            "order_id,line_number,product_id,quantity,unit_price,discount",  # 1
            "1001,1,P1,2,19.90,0",  # 2
            "1001,2,P2,1,inf,0",  # 3
            "1001,3,P3,1,39.00,nan",  # 4 nan discount must not become 0
            "1001,4,P1,1,1e20,0",  # 5
            "1001,5,P1,1,19.90,0.12345",  # 6 five decimals in DECIMAL(9,4)
            "1003,1,P1,1,19.90,0",  # 7 on a recovered order
            "1004,1,P8,1,19.90,0",  # 8
            "1010,1,P1,1,19.90,0",  # 9 order 1010 rejected: cascade
            "1011,1,P1,1,19.90,0",  # 10 formula customer's order: loads
            "1001,6,P4,1,9.00,0",  # 11 product P4 rejected: cascade
            "1002,1,P1,1,19.90,0",  # 12 order 1002 was a broken line: unknown order
            ",,,,,",  # 13 padding
            "1001,7,P1,1,19.90,0.05",  # 14
        ]
    ),
}


def main() -> None:
    """Write every file of the corpus."""
    HERE.mkdir(parents=True, exist_ok=True)
    for name, data in FILES.items():
        (HERE / name).write_bytes(data)


if __name__ == "__main__":
    main()
