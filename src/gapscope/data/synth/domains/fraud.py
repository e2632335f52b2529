"""Formal international correspondence: advance-fee / 419 / lottery / inheritance fraud
against genuine legal, trade and charity letters.

Both classes talk about estates, beneficiaries, wire transfers and large sums in a
stiff register, so "money" alone is not the tell: the fraud promises money the
reader has no reason to receive and asks for secrecy, fees or bank details.
A model trained on workplace credential phishing has little here to hold on to.
"""

from __future__ import annotations

from ..common import COMMON_SLOTS, money, twin
from ..templating import DomainSpec, Template, as_hard, slug


def _big_amount(f):
    millions = f.rng.choice([4, 7, 8, 10, 12, 15, 18, 21, 25, 27, 35, 45])
    thousand = f.rng.choice([0, 200, 500, 750])
    words = {4: "Four", 7: "Seven", 8: "Eight", 10: "Ten", 12: "Twelve", 15: "Fifteen", 18: "Eighteen",
             21: "Twenty-One", 25: "Twenty-Five", 27: "Twenty-Seven", 35: "Thirty-Five", 45: "Forty-Five"}[millions]
    tail = {0: "", 200: " Two Hundred Thousand", 500: " Five Hundred Thousand", 750: " Seven Hundred and Fifty Thousand"}[thousand]
    cur = f.choice(["US$", "USD ", "EUR ", "GBP "])
    name = {"US$": "United States Dollars", "USD ": "United States Dollars", "EUR ": "Euros", "GBP ": "Pounds Sterling"}[cur]
    return f"{cur}{millions * 1_000_000 + thousand * 1000:,}.00 ({words} Million{tail} {name})"


SLOTS = {
    **COMMON_SLOTS,
    "big_amount": _big_amount,
    "amount": money(350, 9800, symbol=["£", "€", "US$"]),
    "trade_amount": money(12000, 480000, symbol=["US$", "EUR ", "GBP "]),
    "gift": money(20, 500, cents=False, symbol=["£", "$", "€"]),
    "fee": money(150, 980, symbol=["US$", "€", "£"]),
    "share": ["30%", "35%", "40%", "45%", "50%"],
    "title_m": ["Mr", "Ms", "Dr", "Mrs"],
    "lawfirm": ["Hargreaves & Lowe LLP", "Whitcombe Solicitors", "Delacroix Avocats", "Brandt & Vos Advocaten",
                "Ashworth Gray Notaries", "Mendes Pereira & Associados"],
    "lawfirm_domain": lambda f: slug(f.get("lawfirm").split()[0]) + f.choice(["law.co.uk", "-legal.com", "notaries.eu"]),
    "charity": ["Riverbank Children's Trust", "The Open Shelter Foundation", "Cedar Hospice", "Clearwater Wells",
                "Harbour Lights Animal Rescue", "Northern Lights Literacy Fund"],
    "charity_domain": lambda f: slug(f.get("charity")) + ".org",
    "trader": ["Kessler Industrial GmbH", "Sunrise Textiles Ltd", "Baltic Timber Exports", "Oakhurst Components",
               "Meridian Agro Trading", "Lumen Optics BV"],
    "trader_domain": lambda f: slug(f.get("trader").split()[0]) + f.choice(["-trading.com", ".de", ".nl", "group.com"]),
    "goods": ["stainless steel fittings", "cotton twill fabric", "kiln-dried oak boards", "LED panel assemblies",
              "roasted cashew kernels", "hydraulic hose couplings"],
    "port": ["Rotterdam", "Hamburg", "Felixstowe", "Antwerp", "Gdansk", "Valencia"],
    "qty": lambda f: f"{f.rng.choice([500, 1200, 2400, 5000, 8000, 12000]):,}",
    "ref": lambda f: f"{f.choice(['REF', 'Ref', 'Our ref', 'File'])}: {f.choice(['HL', 'WS', 'DA', 'BV', 'AG'])}/{f.rng.randint(100, 9999)}/{f.rng.randint(17, 24)}",
    "deceased_first": ["Harold", "Walter", "Edwin", "Henrik", "Franz", "Arthur", "Albert", "George"],
    "widow_first": ["Margaret", "Dorothy", "Ingrid", "Elise", "Helen", "Mariam", "Rose", "Agnes"],
    "deceased": lambda f: f"{f.get('deceased_first')} {f.get('last')}",
    "fraud_title": ["Barrister", "Dr", "Prince", "Mrs", "Engr.", "Hon.", "Sgt", "Mr"],
    "fraud_name": lambda f: f"{f.get('fraud_title')} {f.choice(['James', 'Williams', 'Abdul', 'Grace', 'Paul', 'Kenneth', 'Mariam', 'Joseph'])} {f.choice(['Okonkwo', 'Mensah', 'Johnson', 'Bello', 'Hamid', 'Adewale', 'Kone', 'Smith'])}",
    "fraud_bank": ["Union Trust Bank of West Africa", "the Central Bank", "Ecobank Security Vault", "Apex Diplomatic Courier Services",
                   "the Federal Ministry of Finance", "First Continental Bank"],
    "freemail": ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "aol.com", "mail.ru", "zoho.com"],
    "fraud_email": lambda f: f"{f.choice(['barr', 'info', 'claims', 'mrs', 'dr', 'office', 'contact'])}.{slug(f.get('fraud_name').split()[-1])}{f.rng.randint(1, 99)}@{f.get('freemail')}",
    "lottery": ["Euro-Millennium Promotion", "International E-mail Sweepstakes", "Global Software Award Draw",
                "Commonwealth Lottery Board", "UK National Online Draw", "Royal Dutch Promo Lotto"],
    "dear": ["Dear Friend,", "Dear Sir/Madam,", "Dear Beneficiary,", "Attention: {first} {last},", "Good day,",
             "Dearest One,", "Dear {title_m} {last},"],
    "formal_dear": ["Dear {title_m} {last},", "Dear {title_m} {last}", "Dear Sir or Madam,", "Dear {first},"],
    "secrecy": ["I will ask you to keep this transaction strictly confidential.",
                "Please treat this matter with the utmost secrecy and confidentiality.",
                "Do not disclose this to anyone until the funds are in your account.",
                "For security reasons this must remain between us."],
    "reply_with": ["your full name, address, telephone number and bank account details",
                   "your full name, age, occupation, phone number and a copy of your passport",
                   "your banking particulars and a scanned copy of your identity card",
                   "your full name, country and direct mobile number"],
    "bless": ["God bless you.", "Remain blessed.", "May God bless you and your family.", "Thanks and God bless.", ""],
    "yours": ["Yours faithfully,", "Yours sincerely,", "Kind regards,", "With best regards,"],
    "address": lambda f: f"{f.rng.randint(2, 180)} {f.choice(['Chancery Lane', 'Fleet Street', 'Keizersgracht', 'Rua Augusta', 'Rue de Rivoli', 'King Street'])}, {f.get('city')}",
}

T = Template

# Shared paragraphs: the hard templates are twins of normal ones in the other class.
ESTATE_SUBJ = ["Estate of the late {deceased} - {ref}", "Re: Administration of the estate of {deceased}",
               "Your interest in the estate of {deceased}"]
ESTATE_OPEN = "We act for the executors of the estate of the late {deceased}, who died on {date}. [Under the terms of the will you are named as a residuary beneficiary.|Our searches indicate that you are entitled to a share of the residuary estate.]"
ESTATE_MID = "[The grant of probate was issued on {date2} and we are now collecting in the assets.|We have now completed the sale of the property and settled the liabilities of the estate.]"
ESTATE_SIGN = "{yours}\n{sfirst} {slast}\nPrivate Client Department\n{lawfirm}\n{address}\n{sfirst:lower}.{slast:slug}@{law_host}"
TRADE_SUBJ = ["Proforma invoice PI-{num5} - {goods}", "Re: Quotation for {goods}", "Order confirmation and payment terms",
              "Re: Proforma invoice PI-{num5}"]
TRADE_OPEN = "Further to our telephone conversation of {date}, please find attached our proforma invoice PI-{num5} for {qty} units of {goods}, FOB {port}."
TRADE_SIGN = "{yours}\n{sfirst} {slast}\nExport Sales Manager\n{trader}\n{sfirst:lower}.{slast:slug}@{trade_host}"
TRADE_TERMS = "Payment terms are 30% deposit by bank transfer on confirmation of order and the balance against a copy of the bill of lading. [Lead time is six to eight weeks from receipt of the deposit.|Goods will be inspected by SGS before loading.]"
TRADE_BANK = "Our bank details appear on the invoice. [As a precaution against fraud, please confirm them by telephone with our accounts department before making any payment.|Our bank details have not changed; please treat any email saying otherwise as suspicious.]"
ESTATE_AML = "To comply with our anti-money-laundering obligations, please send certified copies of your passport and a recent utility bill to our office[ by post|]. [Our costs are paid from the estate.|We will confirm our bank details by telephone before any payment is made.]"
WIN_OPEN = "We are pleased to inform you that your {win_subject} was selected in the {win_draw} held on {date}."

LEGIT = [
    T("estate_admin", 0, ESTATE_SUBJ,
      ["{formal_dear}", "{ref}", ESTATE_OPEN,
       ESTATE_MID + " [We expect to make an interim distribution within the next three months.|Estate accounts will be sent to all beneficiaries for approval before any distribution is made.]",
       ESTATE_AML,
       ESTATE_SIGN],
      "genuine probate letter: no fee, verification by phone and post", "{sfirst:lower}.{slast:slug}@{lawfirm_domain}"),
    T("charity_receipt", 0,
      ["Thank you for your donation to {charity}", "Your gift receipt from {charity}", "Donation receipt {num6}"],
      ["{formal_dear}",
       "Thank you for your [generous|kind] gift of {gift} to {charity}, received on {date}. [Your support will help us {charity_use}.|Because of donors like you we can {charity_use}.]",
       "This letter serves as your official receipt for tax purposes. Receipt number: {num6}. [No goods or services were provided in exchange for this contribution.|Gift Aid has been claimed on this donation where you gave us permission.]",
       (0.6, "If you would like to change how we contact you, or cancel a regular gift, please call our supporter care team or write to us at {address}."),
       "With gratitude,\n{sfirst} {slast}\nDirector of Fundraising, {charity}\nRegistered charity no. {num8}"],
      "genuine charity receipt with registration number, asks for nothing", "receipts@{charity_domain}"),
    T("trade_proforma", 0, TRADE_SUBJ,
      ["{formal_dear}", TRADE_OPEN, TRADE_TERMS,
       TRADE_BANK,
       TRADE_SIGN],
      "genuine trade correspondence; warns to confirm bank details by phone", "{sfirst:lower}.{slast:slug}@{trader_domain}"),
    T("letter_of_credit", 0,
      ["Documentary credit {num8} - amendment", "L/C {num8}: discrepancies in presented documents",
       "Advice of documentary credit {num8}"],
      ["{formal_dear}",
       "We refer to documentary credit no. {num8} issued in favour of {trader} for {trade_amount} covering shipment of {goods} from {port}.",
       "[The issuing bank has amended the latest shipment date to {date} and the expiry date to {date2}. All other terms remain unchanged.|The documents presented on {date} show the following discrepancy: the commercial invoice describes the goods differently from the credit. Please advise whether you wish to waive the discrepancy.]",
       "[Please acknowledge receipt of this amendment through your usual banking channel.|We will hold the documents at your disposal pending your instructions.]",
       "{yours}\nTrade Finance Operations\n{sfirst} {slast}"],
      "genuine trade-finance correspondence", "tradefinance@{trader_domain}"),
    T("visa_invitation", 0,
      ["Letter of invitation - {conf} {city}", "Invitation letter for your visa application", "Your conference invitation letter"],
      ["{formal_dear}",
       "On behalf of the organising committee, I am pleased to confirm that your paper has been accepted for presentation at {conf}, to be held in {city} from {date}.",
       "This letter is provided to support your visa application. [The conference does not cover travel or accommodation costs.|Registration fees are paid only through the official conference website and are never collected by email.]",
       "[Please let us know if the consulate requires any further documents.|Should you need a signed hard copy, reply with your postal address.]",
       "{yours}\n{sfirst} {slast}\nProgramme Chair, {conf}"],
      "genuine academic invitation letter", "chair@{conf:slug}.org"),
]
HARD_LEGIT = [
    T("grant_award_real", 0,
      ["Grant award notification - {foundation}", "Your application has been selected", "Award letter {num8}"],
      ["{formal_dear}", WIN_OPEN,
       "You have been approved for an award of {amount} towards [your community project|the costs of your research visit|the restoration work described in your application].",
       "To receive the award, please return the signed grant agreement to our grants officer, {ofirst} {last}, quoting reference {num8}, together with the bank details of your organisation. No fee of any kind is payable to us.",
       "{yours}\n{sfirst} {slast}\nGrants Programme, {foundation}"],
      "genuine grant award: the reader applied, nothing to pay", "grants@{foundation:slug}.org",
      slots={"win_subject": "application", "win_draw": "{foundation} small grants round"}),
    T("probate_research_real", 0,
      ["Possible inheritance - estate of {deceased}", "We may have located an inheritance for you",
       "Re: {deceased} (deceased) - next of kin"],
      ["{formal_dear}",
       "We are probate genealogists instructed to trace the next of kin of the late {deceased}, who died without a will in {city}. Our research suggests you may be a relative entitled to a share of the estate.",
       "[If you would like us to act for you, we will send a written agreement. Our fee is a percentage of what you receive and is only payable if the estate is distributed to you.|You are free to make your own enquiries instead; the estate is listed on the government's unclaimed estates list.] We never ask for any payment in advance.",
       "Please keep this letter confidential until we have confirmed your relationship to the deceased.",
       "{yours}\n{sfirst} {slast}\nCase Manager, {lawfirm}"],
      "genuine heir-hunting letter: no advance fee, explains independent route", "cases@{lawfirm_domain}"),
]
PHISH = [
    T("next_of_kin", 1,
      ["URGENT BUSINESS PROPOSAL", "Confidential: next of kin", "Your assistance is needed", "Re: Inheritance Transfer",
       "Mutual benefit proposal"],
      ["{dear}",
       "I am {fraud_name}, personal attorney to the late {deceased}, a foreign contractor who died with his wife and only daughter in a car accident on {date}. [He left the sum of|Before his death he deposited] {big_amount} with {fraud_bank}.",
       "[The bank has issued me a notice to provide the next of kin or the account will be confiscated.|Since then I have made several inquiries to locate any of his relatives, all to no avail.] I seek your consent to present you as the next of kin so that the proceeds can be paid to you. [We shall share the money: {share} to you and the rest to me.|You will receive {share} of the total sum for your assistance.]",
       "{secrecy} [The transaction is 100% risk free.|Everything will be done legally.]",
       "Reply to my private email {fraud_email} with {reply_with}.",
       "{bless}\n{fraud_name}"],
      "advance-fee 'next of kin' scheme promising {share} of {big_amount}", "{fraud_email}"),
    T("lottery_win", 1,
      ["CONGRATULATIONS!!! YOU HAVE WON", "Winning notification - {lottery}", "Your e-mail has won {big_amount}",
       "Final notice: claim your prize"],
      ["{dear}", WIN_OPEN + " [Your address was attached to ticket number {num8} with serial number {num6}.|You have been approved for a lump sum payout of {big_amount}.]",
       "To claim your prize, contact our claims agent {fraud_name} at {fraud_email} with your winning reference {num8} and {reply_with}.",
       "[A processing and insurance fee of {fee} is required before your funds can be released.|Winners must pay the clearance certificate fee of {fee}.] [Unclaimed prizes are returned to the treasury after 14 days.|Please keep your winning information confidential to avoid double claiming.]",
       "Congratulations once again!\n{fraud_name}\nPromotions Manager"],
      "lottery win the recipient never entered, with a release fee", "{fraud_email}",
      slots={"win_subject": "e-mail address", "win_draw": "{lottery}"}),
    T("compensation_fund", 1,
      ["Payment of your compensation fund", "ATM card worth {big_amount}", "Scam victims compensation", "RE: Your overdue fund"],
      ["{dear}",
       "This is to inform you that your [overdue contract payment|compensation fund as a scam victim|unpaid inheritance] of {big_amount} has been approved by [the International Compensation Committee|the Foreign Debt Settlement Office|the Federal Government] and loaded into an ATM card.",
       "[The card will be delivered to you by diplomatic courier.|You will be able to withdraw from any ATM in the world.] All you need to do is pay the delivery and activation charge of {fee} and send {reply_with} to {fraud_email}.",
       "{secrecy}", "{bless}\n{fraud_name}\nDirector, Foreign Remittance Department"],
      "fake compensation fund released for an up-front fee", "{fraud_email}"),
    T("dying_widow", 1,
      ["From a dying widow", "Please help me fulfil my wish", "Donation for charity work", "I need your trust"],
      ["{dear}",
       "I am Mrs {widow_first} {last}, the wife of the late {deceased}, who was a businessman in {country} for many years. I am suffering from cancer and my doctor says I do not have long to live.",
       "I have {big_amount} in a fixed deposit account and I have decided to donate it to charity through someone honest. [You will keep {share} for your effort.|I want you to use the money for orphanages and widows.]",
       "Please reply to {fraud_email} with {reply_with} so that my lawyer can prepare the transfer documents. {secrecy}",
       "{bless}\nMrs {widow_first} {last}"],
      "sick-widow donation fraud promising a share of {big_amount}", "{fraud_email}"),
    T("consignment_box", 1,
      ["Your consignment box", "Diplomatic delivery pending", "Consignment held at the airport"],
      ["{dear}",
       "I am {fraud_name}, a diplomat attached to {fraud_bank}. I have arrived at [JFK airport|Heathrow|Madrid Barajas] with your consignment box containing {big_amount}, but customs have refused clearance without a non-inheritance certificate.",
       "The certificate costs {fee}. Once paid, I will deliver the box to your home address within 24 hours. [Kindly send {reply_with}.|Contact me immediately at {fraud_email}.]",
       "{secrecy}", "{bless}\n{fraud_name}"],
      "'diplomatic consignment' fraud demanding a certificate fee", "{fraud_email}"),
]
HARD_PHISH = [
    T("estate_twin_fraud", 1, ESTATE_SUBJ,
      ["{formal_dear}", "{ref}", ESTATE_OPEN, ESTATE_MID + " [We expect to make an interim distribution within the next three months.|Estate accounts will be sent to all beneficiaries for approval before any distribution is made.]",
       ESTATE_AML, ESTATE_SIGN],
      "copy of a genuine probate letter sent from look-alike firm domain {law_host}; the 'costs' are requested later",
      "{sfirst:lower}.{slast:slug}@{law_host}", slots={"law_host": twin("{lawfirm_domain}")}),
    T("invoice_twin_fraud", 1, TRADE_SUBJ,
      ["{formal_dear}", TRADE_OPEN, TRADE_TERMS,
       TRADE_BANK, TRADE_SIGN],
      "invoice sent from look-alike supplier domain {trade_host}; the attached invoice carries new bank details",
      "{sfirst:lower}.{slast:slug}@{trade_host}", slots={"trade_host": twin("{trader_domain}")}),
]

SLOTS.update({
    "law_host": "{lawfirm_domain}",
    "trade_host": "{trader_domain}",
    "foundation": ["Whitfield Foundation", "Aurora Community Fund", "Lindqvist Trust", "Harrow Heritage Fund"],
    "charity_use": ["provide safe drinking water to another village", "keep our helpline open through the winter",
                    "fund reading programmes in twelve schools", "care for over 300 animals this year"],
    "conf": ["the International Conference on Applied Hydrology", "the European Symposium on Materials Ageing",
             "the Workshop on Computational Linguistics", "the Nordic Public Health Congress"],
})

DOMAIN = DomainSpec(
    name="fraud",
    description="advance-fee, lottery and inheritance fraud vs genuine formal correspondence",
    slots=SLOTS,
    templates=LEGIT + PHISH + as_hard(HARD_LEGIT + HARD_PHISH),
    hard_share=0.15,
    words=(80, 200),
)
