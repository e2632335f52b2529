"""Automated notifications from banks, couriers and online services.

Real ones (codes, resets, shipping notices, card blocks) are short, templated and
often urgent; the fakes copy them. The dependable tell here is the host name
(look-alike domains such as northfie1dbank-secure.info) plus fees and "verify to
restore access" asks, which is why a model trained on workplace phishing, keyed to
credential requests, misreads these.
"""

from __future__ import annotations

from ..common import COMMON_SLOTS, lookalike, money, twin
from ..templating import DomainSpec, Template, as_hard, slug

BANKS = ["Northfield Bank", "Crestline Credit Union", "Meridian Card Services", "Harbourside Bank",
         "Alder Savings", "Kingsbridge Building Society"]
COURIERS = ["ParcelWay", "SwiftPost", "Fernhill Express", "Boxline Couriers", "Kite Logistics"]
SERVICES = ["Lumio", "Cloudnest", "Payvio", "Streamora", "Tallyhub", "Quickcart"]


def _brand_domain(f):
    return slug(f.get("brand")) + f.choice([".com", ".com", ".co.uk"])


SLOTS = {
    **COMMON_SLOTS,
    "brand": BANKS + COURIERS + SERVICES,
    "bank": lambda f: f.get("brand"), "courier": lambda f: f.get("brand"), "service": lambda f: f.get("brand"),
    "brand_domain": _brand_domain,
    "fake_domain": lookalike("brand_domain"),
    "code": lambda f: f"{f.rng.randint(0, 999999):06d}",
    "amount": money(4, 950),
    "fee": money(1, 4, symbol=["£", "$", "€"]),
    "merchant": ["Marketgate Online", "Fresco Stores", "Petrol Stop 4471", "RideNow Trip", "StreamBox.com", "AppMart/bill",
                 "DineDrop", "HomeCo Online", "GameVault Purchase", "Cornerstone Pharmacy", "AirJet Tickets", "StayAway Rentals"],
    "device": ["Chrome on Windows", "Safari on iPhone", "Firefox on Linux", "the Android app", "Edge on Windows 11",
               "an iPad"],
    "tracking": lambda f: f"{f.choice(['PW', 'SP', 'FX', 'BX', 'KT'])}{f.rng.randint(10**9, 10**10 - 1)}GB",
    "order": lambda f: f"{f.rng.randint(100, 999)}-{f.rng.randint(1000000, 9999999)}",
    "place": ["front door", "porch", "safe place (garage)", "neighbour at no. {num3}", "parcel locker", "reception"],
    "num3": lambda f: str(f.rng.randint(2, 199)),
    "item": ["1 item", "2 items", "3 items", "your order"],
    "auto_footer": [
        "This is an automated message. Please do not reply to this email.",
        "Please do not reply to this email. This mailbox is not monitored.",
        "You are receiving this service email because you have an account with {brand}.",
        "This email was sent to {email}. Manage notification settings in your account.",
    ],
    "legal": ["© {brand} Ltd. All rights reserved.", "{brand} Ltd, registered in England and Wales no. {num8}.",
              "{brand} | Privacy | Help Centre", "© {brand}. Registered office: {num3} Commerce Way, {city}."],
    "safety": [
        "We will never ask for your PIN, full password or one-time codes by email or phone.",
        "{brand} will never ask you to confirm your password in an email.",
        "Never share your verification code, not even with {brand} staff.",
        "To stay safe, always type {brand_domain} into your browser rather than following links in messages.",
    ],
    "greet": ["Hi {first},", "Dear {first} {last},", "Hello {first},", "Dear customer,", "Hi there,"],
    "fake_greet": ["Dear customer,", "Dear valued customer,", "Dear {email},", "Hello,", "Dear {first} {last},",
                   "Hi {first},"],
    "fake_url": ["https://{fake_domain}/verify/{tok}", "http://{fake_domain}/login?session={tok}",
                 "https://{fake_domain}/{tok}", "https://{fake_domain}/secure/account-review",
                 "http://{fake_domain}/account/{tok}"],
    "restore": ["restore full access", "remove the restriction", "avoid permanent suspension",
                "keep using your account", "reactivate your account"],
}

BANK = {"brand": BANKS}
COURIER = {"brand": COURIERS}
SERVICE = {"brand": SERVICES}
ACCOUNT = {"brand": BANKS + SERVICES}
T = Template

# Shared paragraphs: each hard template is its opposite-class twin with another host.
SIGNIN_SUBJ = ["New sign-in to your {service} account", "Security alert: new device", "Was this you?", "New login from {city}"]
SIGNIN_BODY = ["{greet}",
               "We noticed a new sign-in to your {service} account from {device} in {city} on {date} at {time}.",
               "If this was you, you don't need to do anything. If not, [secure your account now|change your password immediately] at {signin_url} and review your recent activity.",
               "{auto_footer}\n{legal}"]
SHIP_SUBJ = ["Your {courier} parcel is on its way", "Order {order} has shipped", "Out for delivery today", "Your parcel is coming {weekday}"]
SHIP_BODY = ["{greet}",
             "[Good news!|Your parcel is on its way.] [Order {order}|{item:cap} from your recent order] [has been dispatched|is out for delivery|has left our depot in {city}].",
             "Tracking number: {tracking}\nEstimated delivery: {weekday} {date}, {time} to {time2}",
             "Track your parcel: {track_url}",
             (0.5, "Not going to be in? You can choose a safe place or a neighbour in the {brand} app at no extra cost."),
             "{auto_footer}\n{legal}"]
LIMIT_SUBJ = ["Your account has been limited", "Unusual activity detected on your account", "Action required: verify your identity",
              "Important: account access restricted", "{brand} account temporarily restricted"]
LIMIT_OPEN = "We [detected|have noticed] [unusual activity|an unrecognised login attempt|several failed payments] on your {brand} account and have temporarily [limited|restricted] it for your protection."
DUTY_SUBJ = ["Delivery on hold: charges due", "Your parcel is on hold", "{courier}: fee due for {tracking}", "Action required to deliver your parcel"]
DUTY_OPEN = "Your parcel {tracking} [from {country}|] is being held [because import VAT and duty|because a handling fee] of {fee} is due."
CHARGE_SUBJ = ["Payment of {amount} pending", "Did you authorise this payment?", "Unusual payment on your card ending {last4}",
               "Check this payment: {amount}"]
CHARGE_OPEN = "A payment of {amount} to {merchant} [is pending on your card ending {last4}|was attempted on {date} at {time}] and looked unusual to us."

LIMIT_ASK = "To {restore}, please [verify your identity|confirm your recent activity] within {hours} hours:\n{link}"
DUTY_ASK = "To [schedule|arrange] delivery, pay [within {hours} hours|today]:\n{link}"
CHARGE_ASK = "If you did not make this [purchase|payment], [cancel it|dispute it] [and confirm your card details|and verify your account] at:\n{link}"

LEGIT = [
    T("otp_code", 0,
      ["Your {brand} verification code", "{code} is your {brand} code", "Your one-time passcode", "Sign-in code for {brand}"],
      ["{greet}",
       "Your {brand} [verification|security|one-time] code is {code}. [It expires in 10 minutes.|It is valid for 5 minutes.|Enter it on the sign-in screen to continue.]",
       "[If you didn't request this code, you can safely ignore this email. Someone may have typed your email address by mistake.|Didn't try to sign in? Change your password in the {brand} app.]",
       "{safety}", "{auto_footer}\n{legal}"],
      "genuine one-time code, no link, warns not to share it", "no-reply@{brand_domain}", slots=ACCOUNT),
    T("reset_requested", 0,
      ["Reset your {brand} password", "Password reset request", "Your password reset link", "{brand}: reset your password"],
      ["{greet}",
       "We received a request to reset the password for the {brand} account linked to {email}. [To choose a new password, use the link below.|Click the button below to set a new password.]",
       "https://www.{brand_domain}/account/reset?token={tok}{tok2}",
       "[This link expires in 60 minutes.|The link can only be used once and expires in 1 hour.] If you didn't ask to reset your password, ignore this email. Your password won't change.",
       "{auto_footer}\n{legal}"],
      "genuine reset link on the brand's own domain {brand_domain}", "security@{brand_domain}", slots=SERVICE),
    T("shipped", 0, SHIP_SUBJ, SHIP_BODY,
      "genuine shipping notice tracking on {brand_domain}", "tracking@{brand_domain}",
      slots={**COURIER, "track_url": "https://track.{brand_domain}/{tracking}"}),
    T("delivered", 0,
      ["Delivered: your {courier} parcel", "Your parcel has been delivered", "Delivery confirmation {tracking}"],
      ["{greet}",
       "Your parcel {tracking} was delivered to your {place} at {time} today[ by {sfirst}|].",
       "[A photo of the delivery is available in your tracking history.|If you can't find it, check around your property first.] [Rate your delivery in the app.|Questions? Visit our Help Centre.]",
       "https://www.{brand_domain}/track/{tracking}",
       "{auto_footer}\n{legal}"],
      "genuine delivery confirmation", "tracking@{brand_domain}", slots=COURIER),
    T("transaction", 0,
      ["Card transaction alert", "You spent {amount} at {merchant}", "{bank}: payment alert", "Transaction notification"],
      ["{greet}",
       "A [purchase|payment] of {amount} at {merchant} was made with your {bank} card ending {last4} on {date} at {time}.",
       "[If you recognise this transaction, you don't need to do anything.|No action is needed if this was you.] If you don't recognise it, [call us on the number on the back of your card|freeze your card in the {bank} app] straight away.",
       "{safety}", "{auto_footer}\n{legal}"],
      "genuine card alert that points to the app or the number on the card", "alerts@{brand_domain}", slots=BANK),
    T("statement", 0,
      ["Your {month} statement is ready", "New statement available", "{bank}: your e-statement"],
      ["{greet}",
       "Your {month} statement for the account ending {last4} is now available. [Log in to online banking or the {bank} app to view it.|You can view and download it in the Documents section of the app.]",
       "[Your closing balance and any interest will be shown there.|Statements are kept for 7 years.]",
       "{safety}", "{auto_footer}\n{legal}"],
      "genuine statement notice without links", "estatements@{brand_domain}", slots=BANK),
    T("receipt", 0,
      ["Your {service} receipt", "Payment received - thank you", "Receipt for your {service} subscription"],
      ["{greet}",
       "Thanks for your payment of {amount} for your {service} [Premium|Family|Pro] plan. [Your next payment is due on {date}.|This covers {month}.]",
       "Receipt no. {num8}\nPayment method: card ending {last4}",
       "[View or download invoices in your account settings.|Manage your plan at https://www.{brand_domain}/account/billing]",
       "{auto_footer}\n{legal}"],
      "genuine receipt from {brand_domain}", "billing@{brand_domain}", slots=SERVICE),
    T("new_signin", 0, SIGNIN_SUBJ, SIGNIN_BODY,
      "genuine sign-in alert linking to the real domain {brand_domain}", "security@{brand_domain}",
      slots={**SERVICE, "signin_url": "https://account.{brand_domain}/security"}),
]
HARD_LEGIT = [
    T("account_limited_real", 0, LIMIT_SUBJ,
      ["{fake_greet}", LIMIT_OPEN, LIMIT_ASK.replace("{link}", "https://secure.{brand_domain}/verify/{tok}"),
       (0.5, "{auto_footer}"), (0.5, "{legal}")],
      "genuine restriction notice: urgent, but the link is the brand's own host {brand_domain}", "security@{brand_domain}",
      slots=ACCOUNT),
    T("duty_fee_real", 0, DUTY_SUBJ,
      ["{fake_greet}", DUTY_OPEN, DUTY_ASK.replace("{link}", "https://pay.{brand_domain}/{tok}"),
       (0.6, "{auto_footer}\n{legal}")],
      "genuine customs/handling fee on the courier's real domain {brand_domain}", "customs@{brand_domain}", slots=COURIER),
    T("card_check_real", 0, CHARGE_SUBJ,
      ["{fake_greet}", CHARGE_OPEN, CHARGE_ASK.replace("{link}", "https://secure.{brand_domain}/dispute/{tok}"),
       (0.5, "{auto_footer}\n{legal}")],
      "genuine fraud check: urgent, but on the bank's own host {brand_domain}", "alerts@{brand_domain}", slots=BANK),
]
PHISH = [
    T("account_limited", 1, LIMIT_SUBJ + ["{brand} account suspended"],
      ["{fake_greet}", LIMIT_OPEN, LIMIT_ASK.replace("{link}", "{fake_url}"),
       (0.6, "[If we do not hear from you, your account will be permanently closed.|Failure to verify will result in the loss of stored funds.|This is your final reminder.]"),
       (0.5, "{auto_footer}"), (0.5, "{legal}")],
      "look-alike domain {fake_domain} asks for login to 'restore' access", "security@{fake_domain}", slots=ACCOUNT),
    T("redelivery_fee", 1, DUTY_SUBJ + ["Delivery attempt failed", "Reschedule your delivery"],
      ["{fake_greet}",
       "[We attempted to deliver|We were unable to deliver] your parcel {tracking} on {date} [but no one was available|because the address was incomplete].",
       DUTY_OPEN, DUTY_ASK.replace("{link}", "{fake_url}"),
       "[Parcels not rescheduled will be returned to the sender.|After this time your item will be destroyed.]",
       (0.6, "{auto_footer}\n{legal}")],
      "fake redelivery fee collected on look-alike domain {fake_domain}", "notice@{fake_domain}", slots=COURIER),
    T("fake_charge", 1, CHARGE_SUBJ + ["New charge on your account", "Your order {order} has been placed"],
      ["{fake_greet}", CHARGE_OPEN, CHARGE_ASK.replace("{link}", "{fake_url}"),
       "[Unclaimed disputes are closed after {hours} hours.|Refunds can only be issued within 24 hours.]",
       (0.5, "{auto_footer}\n{legal}")],
      "fake pending charge pushes a 'cancel' link on {fake_domain}", "billing@{fake_domain}", slots=BANK),
    T("billing_failed", 1,
      ["Your payment was declined", "Update your billing information", "Your {service} membership is on hold",
       "Subscription suspended: payment failed"],
      ["{fake_greet}",
       "We couldn't process your last payment for your {service} subscription. [Your membership has been put on hold.|Your service will be interrupted.]",
       "To {restore}, update your [billing information|card details] within {hours} hours:\n{fake_url}",
       (0.6, "{auto_footer}"), (0.5, "{legal}")],
      "fake failed-billing notice collects card details on {fake_domain}", "billing@{fake_domain}", slots=SERVICE),
    T("refund_bait", 1,
      ["You are eligible for a refund", "Refund of {amount} pending", "Tax refund notification"],
      ["{fake_greet}",
       "After [a review of your account|the last annual calculation], you are eligible to receive a refund of {amount}.",
       "To receive the funds, [confirm your account and card details|complete the refund form] at {fake_url}. [Requests must be submitted within {hours} hours.|Your reference is {num8}.]",
       (0.6, "{auto_footer}\n{legal}")],
      "refund bait asking for card details at {fake_domain}", "refunds@{fake_domain}", slots=ACCOUNT),
]
HARD_PHISH = [
    T("signin_lookalike", 1, SIGNIN_SUBJ, SIGNIN_BODY,
      "copy of a real sign-in alert whose link goes to look-alike {twin_host}", "security@{twin_host}",
      slots={**SERVICE, "signin_url": "https://{twin_host}/security", "twin_host": twin("account.{brand_domain}")}),
    T("tracking_lookalike", 1, SHIP_SUBJ, SHIP_BODY,
      "shipping notice copy linking to look-alike {twin_host}", "tracking@{twin_host}",
      slots={**COURIER, "track_url": "https://{twin_host}/{tracking}", "twin_host": twin("track.{brand_domain}")}),
]

DOMAIN = DomainSpec(
    name="alerts",
    description="automated bank, courier and account notifications; phishing = look-alike-domain fakes",
    slots=SLOTS,
    templates=LEGIT + PHISH + as_hard(HARD_LEGIT + HARD_PHISH),
    hard_share=0.1,
    words=(40, 110),
)
