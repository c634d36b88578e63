#!/usr/bin/env python3
"""Rebuild the PDF pages of the demo handbook (examples/handbook/*.pdf).

The text of each PDF lives in this file. Requires reportlab, which is not a
ragbot dependency:

    pip install reportlab
    python examples/make_pdfs.py

Output is deterministic (reportlab's invariant mode), so rebuilding without
changing the text gives byte-identical files.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from reportlab import rl_config

rl_config.invariant = 1  # fixed dates and IDs -> reproducible bytes

from reportlab.lib.pagesizes import LETTER  # noqa: E402
from reportlab.lib.styles import getSampleStyleSheet  # noqa: E402
from reportlab.lib.units import inch  # noqa: E402
from reportlab.platypus import (  # noqa: E402
    ListFlowable,
    ListItem,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
)

OUT_DIR = Path(__file__).resolve().parent / "handbook"

# Each document is a list of blocks:
#   ("h1", text) ("h2", text) ("p", text) ("ul", [items]) ("ol", [items]) ("break", None)
# Text is plain; it is XML-escaped before being handed to reportlab.

FILING_EXPENSES = {
    "file": "filing-expenses.pdf",
    "title": "Filing Expenses",
    "author": "Northwind Labs Finance",
    "blocks": [
        ("h1", "Filing Expenses"),
        ("p", "Owner: Finance (Tom Becker). Applies to everyone who claims money back "
              "or holds a Ledger company card."),
        ("p", "This guide explains how to submit an expense claim in Ledger, how approval "
              "works, and when you get paid. What is and is not reimbursable, and the "
              "spending limits, are covered on the Expense Policy page."),
        ("h2", "Where to file"),
        ("p", "All claims are filed in Ledger at https://ledger.northwind.example or in the "
              "Ledger mobile app (iOS and Android). Sign in with Keystone SSO. Paper forms "
              "and emailed receipts are not accepted."),
        ("h2", "Filing a claim step by step"),
        ("ol", [
            "Photograph the receipt with the Ledger app, or forward an emailed receipt to "
            "receipts@northwind.example from your work address. Ledger reads the merchant, "
            "date and amount automatically; check them.",
            "Choose a category, for example Meals - team, Meals - customer, Learning, "
            "Travel - ground, or Home office.",
            "Add a project code. Use ENG-000 for general engineering costs, or the customer "
            "code (CUST-xxxx) if the cost can be billed to a customer.",
            "For meals, list everyone who attended in the Attendees field.",
            "Write a one-line business purpose, such as 'Team dinner after the EU launch'.",
            "Press Submit. You can group several expenses into one report, but you do not "
            "have to.",
        ]),
        ("h2", "Deadlines"),
        ("ul", [
            "Submit every claim within 30 days of the date of the expense.",
            "Claims submitted between 31 and 90 days after the expense need a short "
            "explanation and Finance approval.",
            "Claims older than 90 days are not reimbursed.",
        ]),
        ("h2", "Company card transactions"),
        ("p", "Purchases on a Ledger company card appear in Ledger automatically within two "
              "days. You still have to attach the receipt, category and project code. Any "
              "card transaction left incomplete for 14 days causes the card to be frozen "
              "until it is fixed."),
        ("break", None),
        ("h2", "Approval"),
        ("ul", [
            "Every claim is approved by your manager in Ledger. Managers get a daily digest "
            "of pending claims.",
            "Any single claim over $1,000 is also approved by Finance after your manager.",
            "A manager's own claims are approved by their manager, never by themselves or "
            "a direct report.",
        ]),
        ("p", "If a claim is rejected, Ledger shows the reason. Fix it and resubmit within "
              "14 days, or it is closed."),
        ("h2", "Getting paid"),
        ("p", "Reimbursements are paid by direct deposit to the bank account in Harbor HR, "
              "in a weekly payout run every Friday. Claims fully approved by Wednesday at "
              "17:00 Pacific are paid that Friday; later approvals go into the following "
              "week's run. Foreign-currency expenses are converted at the exchange rate on "
              "the transaction date, and any foreign transaction fee your bank charged is "
              "reimbursed if you attach the statement line."),
        ("h2", "Missing receipts"),
        ("p", "If you lose a receipt, fill in a Missing Receipt Declaration in Ledger (Add "
              "expense, then No receipt). You can use a declaration up to 3 times per "
              "calendar year, for expenses of up to $75 each. Beyond that, expenses without "
              "a receipt are not reimbursed."),
        ("h2", "Per diem and mileage claims"),
        ("ul", [
            "Per diem: after a trip, file one claim of type Per Diem per trip. Enter the "
            "destination and your departure and return dates and link the Navigator trip "
            "ID. Ledger calculates the amount from the current rates, so do not type a "
            "number yourself. No meal receipts are needed.",
            "Mileage: use the claim type Mileage and enter the start and end addresses. "
            "Ledger calculates the distance and the amount.",
        ]),
        ("h2", "Questions"),
        ("p", "Ask in #ask-finance or email finance@northwind.example. For a payment that "
              "has not arrived, include the Ledger claim number (it starts with EXP-)."),
    ],
}

REMOTE_WORK = {
    "file": "remote-work-and-office.pdf",
    "title": "Remote Work and the Portland Office",
    "author": "Northwind Labs People Ops",
    "blocks": [
        ("h1", "Remote Work and the Portland Office"),
        ("p", "Owner: People Ops (Grace Hill) and the office manager (Priya Raman)."),
        ("p", "Northwind Labs is a hybrid company. About two thirds of us live near Portland, "
              "Oregon and use the office some of the time; the rest work fully remotely "
              "from across the United States and Canada. This guide covers how we work "
              "across locations, the office itself, and support for home offices."),
        ("h2", "Working hours"),
        ("p", "You choose your own working hours, but everyone is available for meetings and "
              "chat during core hours, 10:00 to 14:00 Pacific time, Monday to Friday. Put "
              "your usual working hours in your Google Calendar settings so colleagues can "
              "see them."),
        ("h2", "Anchor days"),
        ("p", "People who live within commuting distance of Portland come to the office on "
              "the two anchor days, Tuesday and Thursday. Teams plan workshops and "
              "whiteboard sessions for those days. There is a catered team lunch every "
              "Thursday at 12:00. Other days are optional."),
        ("h2", "The office"),
        ("ul", [
            "Address: 412 SW Alder Street, 5th floor, Portland, OR 97204.",
            "Open 07:00 to 20:00 on weekdays with your badge. To work in the office outside "
            "those hours or at weekends, tell the office manager in advance.",
            "Desks are not assigned. Book a desk in the Roost app "
            "(https://roost.northwind.example); there are 40 desks, two focus booths, "
            "and four meeting rooms named Willamette, Columbia, Deschutes and Rogue.",
            "Wi-Fi: join Northwind-Staff and sign in with Keystone SSO. Guests use "
            "Northwind-Guest, whose password rotates weekly and is included in the visitor "
            "confirmation email.",
        ]),
        ("h2", "Badges and guests"),
        ("p", "Lost badges are replaced by the office manager, Priya Raman, extension 4100. "
              "Register guests in Greeter at least 24 hours before they arrive. Guests sign "
              "the visitor agreement at the front-desk kiosk, wear a visitor badge, and must "
              "be accompanied by their host at all times."),
        ("break", None),
        ("h2", "Home office support"),
        ("ul", [
            "Home office stipend: a one-time $1,000 for a desk, chair, lighting and similar, "
            "to be spent within your first 90 days. File it in Ledger under the category "
            "Home office. Items bought with it are yours to keep.",
            "Internet stipend: $50 per month, added to your payslip automatically. No "
            "receipts are needed.",
            "Coworking: fully remote employees may use a coworking space, up to $250 per "
            "month, with manager approval. File it monthly in Ledger.",
        ]),
        ("p", "Monitors, keyboards and other computer equipment are not bought with the home "
              "office stipend; request them from IT."),
        ("h2", "Working from somewhere else"),
        ("ul", [
            "Working temporarily from another country is allowed for up to 4 weeks per "
            "calendar year in total. Ask People Ops at least 30 days before you go, because "
            "tax and employment law vary by country. Some countries are not allowed for "
            "security reasons; People Ops keeps the list.",
            "Working from another US state or Canadian province for more than 30 days, or "
            "moving home permanently, must be reported to People Ops before it happens.",
            "Wherever you work, use the VPN on public networks and keep your screen out of "
            "view of others.",
        ]),
        ("h2", "Meeting in person"),
        ("p", "The whole company meets in person twice a year, in May and October, for a "
              "three-day offsite. Travel and accommodation for offsites are paid by the "
              "company and booked by People Ops, not by you. Teams with remote members "
              "may also hold one team gathering per year, planned with their manager."),
        ("h2", "Questions"),
        ("p", "Office questions: #office-portland. Remote-work questions: #ask-people."),
    ],
}


def build(doc: dict) -> Path:
    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    path = OUT_DIR / doc["file"]
    story = []
    for kind, content in doc["blocks"]:
        if kind == "h1":
            story.append(Paragraph(escape(content), styles["Heading1"]))
        elif kind == "h2":
            story.append(Paragraph(escape(content), styles["Heading2"]))
        elif kind == "p":
            story.append(Paragraph(escape(content), body))
        elif kind in ("ul", "ol"):
            items = [ListItem(Paragraph(escape(t), body)) for t in content]
            story.append(
                ListFlowable(
                    items,
                    bulletType="1" if kind == "ol" else "bullet",
                    leftIndent=18,
                )
            )
            story.append(Spacer(1, 4))
        elif kind == "break":
            story.append(PageBreak())
        else:
            raise ValueError(f"unknown block kind {kind!r}")

    pdf = SimpleDocTemplate(
        str(path),
        pagesize=LETTER,
        title=doc["title"],
        author=doc["author"],
        subject="Northwind Labs handbook (fictional demo content for ragbot)",
        leftMargin=inch,
        rightMargin=inch,
        topMargin=inch,
        bottomMargin=inch,
    )
    pdf.build(story)
    return path


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for doc in (FILING_EXPENSES, REMOTE_WORK):
        path = build(doc)
        print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
