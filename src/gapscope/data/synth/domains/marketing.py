"""Promotional mail: genuine retailer newsletters that shout (FLASH SALE! You're a
winner!) against spam and scam offers (miracle pills, crypto bots, knock-off stores).

Urgency, prizes and "free" appear on both sides; the tell is the offer itself
(too good, unregulated, from nobody you signed up with) and the missing or fake
unsubscribe machinery. The HTML remnants ("View in browser", [image: ...], &nbsp;)
are the domain's style, not a label cue.
"""

from __future__ import annotations

from ..common import COMMON_SLOTS, twin
from ..templating import DomainSpec, Template, as_hard, slug

PRODUCTS = {
    "Larkspur Home": ["linen bedding", "reading lamps", "wool throws", "bath towels"],
    "Trailhead Outfitters": ["hiking boots", "rain jackets", "merino base layers", "trekking poles"],
    "Mossgrove Books": ["signed first editions", "cookbooks", "crime novels", "children's picture books"],
    "Copper Kettle Coffee": ["single-origin beans", "pour-over kits", "ceramic mugs", "decaf blends"],
    "Northwind Apparel": ["knitwear", "denim jackets", "organic cotton tees", "winter coats"],
    "Pixel Harbor Games": ["board games", "strategy games", "jigsaw puzzles", "card games"],
    "Verdant Gardens": ["houseplants", "seed collections", "terracotta pots", "garden tools"],
    "Luma Skincare": ["vitamin C serum", "SPF moisturisers", "cleansing balms", "face masks"],
    "Fable & Fern Kids": ["wooden toys", "kids' raincoats", "baby sleepsuits", "activity books"],
    "Ridgeway Cycles": ["bike lights", "cycling jerseys", "helmets", "panniers"],
}
RETAILERS = list(PRODUCTS)

SLOTS = {
    **COMMON_SLOTS,
    "retailer": RETAILERS,
    "retailer_domain": lambda f: slug(f.get("retailer")) + f.choice([".com", ".co.uk", ".com"]),
    "shop_host": "www.{retailer_domain}",
    "product": lambda f: f.choice(PRODUCTS[f.get("retailer")]),
    "pct_off": ["20", "25", "30", "40", "50", "15"],
    "big_pct": ["70", "80", "85", "90"],
    "reward": ["$10", "$15", "£20", "$25", "£5", "€10"],
    "points": lambda f: f"{f.rng.randint(3, 48) * 50:,}",
    "threshold": ["$35", "£40", "$50", "€45"],
    "code": lambda f: f"{f.choice(['SAVE', 'SPRING', 'HELLO', 'THANKS', 'WEEKEND', 'VIP'])}{f.rng.randint(10, 40)}",
    "preheader": ["View this email in your browser", "Having trouble viewing this email? View it online",
                  "View in browser | Add us to your address book", "&nbsp;"],
    "image": ["[image: {product} banner]", "[image: {retailer} logo]", "[image: Shop the collection]", ""],
    "shop_url": ["https://www.{retailer_domain}/sale?utm_source=newsletter&utm_medium=email",
                 "https://www.{retailer_domain}/new-in?utm_campaign={month:lower}",
                 "https://www.{retailer_domain}/{product:slug}?utm_source=email",
                 "https://click.{retailer_domain}/{tok}"],
    "legit_footer": [
        "You're receiving this email because you signed up at {retailer_domain}.\nUnsubscribe | Manage preferences | Privacy policy\n{retailer}, {num3} Market Street, {city}",
        "Sent to {email}. Don't want these emails? Unsubscribe or update your preferences.\n© {retailer} Ltd, {city}",
        "You are subscribed to {retailer} news and offers. Unsubscribe at any time.\n{retailer} | {num3} High Street | {city}\nPrices and offers subject to availability.",
    ],
    "num3": lambda f: str(f.rng.randint(2, 299)),
    "spam_brand": ["VitaSlim Pro", "KetoBurn Ultra", "NeuroMax", "ProstaVital", "GlucoBalance", "FlexiJoint Plus"],
    "coin": ["Bitcoin", "QuantumAI", "Ethereum", "the new CryptoEdge app", "BitProfit"],
    "spam_domain": lambda f: f"{f.choice(['best', 'top', 'mega', 'hot', 'smart', 'daily', 'promo', 'super'])}-{f.choice(['deals', 'offers', 'savings', 'health', 'profits', 'rewards', 'news'])}{f.rng.randint(1, 99)}{f.choice(['.top', '.xyz', '.info', '.click', '.biz', '.online'])}",
    "spam_url": ["http://{spam_domain}/?id={tok}", "https://{spam_domain}/go/{tok}", "http://{spam_domain}/offer",
                 "https://{spam_domain}/claim?ref={tok}"],
    "spam_footer": [
        "To stop receiving these messages reply REMOVE.",
        "If you no longer wish to receive our offers, write to PO Box {num3}, {city}.",
        "This is a one-time mailing. You were selected because you opted in with one of our partners.",
        "Unsubscribe: {spam_url2}",
        "",
    ],
    "spam_url2": ["http://{spam_domain}/unsub", "https://{spam_domain}/optout?e={first_l}"],
    "spam_greet": ["Hello!", "Dear Friend,", "Hi {first},", "ATTENTION!", "Hey there,", "Dear Customer,", "Hi,"],
    "knockoff": ["Sneaker Outlet Warehouse", "Luxe Bags Clearance", "Designer Watch Depot", "Official Brand Outlet"],
    "fake_brand_goods": ["designer trainers", "luxury handbags", "Swiss-style watches", "designer sunglasses",
                         "premium down jackets"],
    "season": ["spring", "summer", "autumn", "holiday", "anniversary"],
    "n_winners": ["50", "100", "25", "10"],
}

T = Template

# Shared bodies: the hard spam rows are these same emails sent from a look-alike shop host.
FLASH_SUBJ = ["FLASH SALE: {pct_off}% off everything - ends midnight!", "{pct_off}% off {product} - 48 hours only",
              "Last chance: {pct_off}% off ends tonight", "Don't miss out! {pct_off}% off sitewide", "It's back: the {season} sale"]
FLASH_BODY = ["{preheader}", "{image}",
              "[Hurry|Quick], {first}! [For 48 hours only|Until midnight tonight|This weekend only], take {pct_off}% off [everything|our best-selling {product}|all {product}] with code {code} at checkout.",
              "[Free delivery on orders over {threshold}.|Free returns within 30 days.|Members get early access to new drops.] [Stock is limited, so don't wait.|Our {product} always sell out fast.]",
              "SHOP NOW: https://{shop_host}/sale?utm_source=newsletter&utm_medium=email",
              "{legit_footer}"]
POINTS_SUBJ = ["You have {points} points to spend", "Your {retailer} rewards update", "Points balance: {points}"]
POINTS_BODY = ["{preheader}", "Hi {first},",
               "You have {points} Rewards points, worth {reward} off your next order. [Points expire 12 months after you earn them.|Spend them online or in store.]",
               "[Double points on {product} this week only.|Refer a friend and you both get {reward}.]",
               "See your rewards: https://{shop_host}/account/rewards",
               "{legit_footer}"]
LEGIT = [
    T("flash_sale", 0, FLASH_SUBJ, FLASH_BODY,
      "real retailer promotion with working unsubscribe and postal address", "hello@news.{retailer_domain}"),
    T("newsletter", 0,
      ["This week at {retailer}: new {product}", "{month} picks from the {retailer} team", "New in: {product}",
       "Your {month} newsletter"],
      ["{preheader}",
       "Hi {first},",
       "[This month we're excited about|Our team has been testing|Just landed:] new {product}[, made in small batches|, designed in {city}|, back in stock in every size]. [We've also written a short guide to choosing the right one.|Read the story behind them on our blog.]",
       "[Staff pick: {product2}.|Coming soon: {product2}.|Event: join us in our {city} store on {weekday} {date} for a free workshop.]",
       "Read more: {shop_url}",
       "{legit_footer}"],
      "real retailer newsletter", "newsletter@{retailer_domain}"),
    T("abandoned_cart", 0,
      ["You left something behind", "Still thinking it over?", "Your cart is waiting", "{first}, your {product} are almost gone"],
      ["{preheader}", "{image}",
       "Hi {first}, you left {product} in your cart. [We've saved it for you, but we can't hold it forever.|Good news: it's still in stock.]",
       "[Complete your order today and get free delivery over {threshold}.|Use code {code} for {pct_off}% off if you check out in the next 24 hours.]",
       "Return to your cart: https://www.{retailer_domain}/cart",
       "{legit_footer}"],
      "real abandoned-cart reminder", "orders@{retailer_domain}"),
    T("loyalty_points", 0, POINTS_SUBJ, POINTS_BODY,
      "real loyalty-programme statement", "rewards@{retailer_domain}"),
]
HARD_LEGIT = [
    T("sweepstakes_real", 0,
      ["Congratulations - you're a winner!", "You won! Claim your {reward} gift card", "{first}, you've been selected!"],
      ["{preheader}", "{image}",
       "Congratulations, {first}! You've been selected as one of {n_winners} lucky winners in our {season} giveaway and you've won a {reward} {retailer} gift card!",
       "[Claim your prize before {date}|Your reward is waiting in your account]: https://www.{retailer_domain}/rewards/claim",
       "No purchase necessary. [Official rules at {retailer_domain}/rules.|Winners were drawn at random from newsletter subscribers.]",
       "{legit_footer}"],
      "real retailer giveaway: prize claimed in the store account, rules published", "giveaway@{retailer_domain}"),
    T("reward_expiring_real", 0,
      ["URGENT: your {reward} reward expires tonight!", "Last chance to use your {reward} reward", "Final reminder: {points} points expiring"],
      ["{preheader}",
       "Hi {first}, your {reward} reward expires at midnight! [Don't let it go to waste.|Act now to keep it.]",
       "[It's automatically applied at checkout when you're signed in.|Use it on anything, including sale items.] [New {product} have just arrived, so there's plenty to choose from.|Our {product} are a customer favourite.] Shop now: {shop_url}",
       "{legit_footer}"],
      "real loyalty reminder with urgency wording", "rewards@{retailer_domain}"),
]
SPAM = [
    T("miracle_pill", 1,
      ["Doctors are SHOCKED by this", "Lose {lbs} lbs in {weeks} weeks - no diet!", "The {spam_brand} secret they don't want you to know",
       "{first}, your FREE bottle is waiting"],
      ["{spam_greet}",
       "[Doctors HATE this one simple trick!|A breakthrough formula is flying off the shelves.] {spam_brand} [helps you lose up to {lbs} lbs in {weeks} weeks|melts belly fat while you sleep|restores perfect blood sugar] with NO diet and NO exercise. [100% natural, clinically proven and risk-free!|Thousands of happy customers can't be wrong!]",
       (0.7, "{testimonial}"),
       "[Order today and get a FREE bottle!|Supplies are LIMITED - act NOW!] {spam_url}",
       "{spam_footer}"],
      "miracle-pill spam with unverifiable health claims", "offers@{spam_domain}"),
    T("work_from_home", 1,
      ["Make ${wfh} a week from home!", "This mum earns ${wfh}/week online", "Guaranteed income - start today",
       "Job offer: remote assistant (${wfh}/wk)"],
      ["{spam_greet}",
       "[Are you tired of your 9-5?|Want to be your own boss?] Our proven system lets anyone make ${wfh} a week from home, [with no experience needed|working just 2 hours a day|using only your phone]. [This is NOT a scam!|100% guaranteed or your money back!]",
       (0.7, "{testimonial_money}"),
       "[Spaces are limited to the first {n_winners} people.|Only {n_winners} spots left in your area!] Start now: {spam_url}",
       "{spam_footer}"],
      "get-rich-quick work-from-home spam", "jobs@{spam_domain}"),
    T("crypto_bot", 1,
      ["Turn $250 into ${wfh} in 30 days", "The crypto bot banks don't want you to know about", "Your {coin} profits are waiting",
       "Invest once, earn forever"],
      ["{spam_greet}",
       "[Everyday people are making a fortune with {coin}.|Our AI trading bot made investors ${wfh} last week.] Start with just $250 and watch your money grow [automatically|24/7|while you sleep]. [Guaranteed returns of 300%!|No experience, no risk.]",
       (0.7, "{testimonial_money}"),
       "[Register now before registrations close: {spam_url}|Claim your free account: {spam_url}]",
       "{spam_footer}"],
      "crypto investment scam promising guaranteed returns", "invest@{spam_domain}"),
    T("prize_survey", 1,
      ["You have been selected to receive a FREE gift", "{first}, claim your {prize}", "Congratulations! Your reward is ready",
       "Final notice: unclaimed reward"],
      ["{spam_greet}",
       "[Congratulations!|You are our lucky visitor today!] You have been selected to receive a [brand new {prize}|{prize}] for FREE. Just answer 3 quick questions [and pay a small shipping fee of $4.95|to confirm your eligibility].",
       (0.6, "[Over 10,000 people have already claimed theirs.|Our records show your reward has not been claimed yet.] [We pay for the product, you only cover delivery.|No credit card tricks, no catch.]"),
       "[This offer expires in 10 minutes!|Only 3 rewards left!] Claim here: {spam_url}",
       "{spam_footer}"],
      "fake prize survey that charges 'shipping' for a free gift", "rewards@{spam_domain}"),
    T("seo_pharma", 1,
      ["Cheap meds online - no prescription", "Up to {big_pct}% off brand medication", "Replica watches at wholesale prices",
       "Boost your website to #1 in search results"],
      ["{spam_greet}",
       "[Buy cheap meds online with NO prescription needed!|Top quality replica watches at {big_pct}% off!|We can put your website on the first page of search results in 7 days, guaranteed!] [Discreet worldwide shipping.|Lowest prices on the internet.|100% satisfaction guaranteed.]",
       (0.7, "[Why pay more? We ship from our licensed partners overseas and every order is tracked.|Join over 50,000 satisfied customers worldwide.|Our experts have helped thousands of businesses grow.] [Special price for new customers only!|Bulk discounts available.]"),
       "[Visit us now: {spam_url}|Order here: {spam_url}]",
       "{spam_footer}"],
      "unsolicited pharmacy / replica / SEO spam", "sales@{spam_domain}"),
    T("knockoff_store", 1,
      ["CLEARANCE: up to {big_pct}% off {fake_brand_goods}", "Store closing - everything must go", "{big_pct}% off today only"],
      ["[image: {knockoff} logo]",
       "{spam_greet}",
       "Our warehouse is closing and ALL {fake_brand_goods} are up to {big_pct}% off while stocks last! [Genuine quality, factory prices.|100% authentic, lowest price guaranteed.]",
       "[Free worldwide shipping on every order.|Pay with card or crypto.] [Only today!|Hurry, sizes are selling out!]",
       "SHOP NOW: https://www.{knockoff:slug}-sale.shop/clearance",
       "{spam_footer}"],
      "knock-off store selling branded goods at implausible discounts", "news@{knockoff:slug}-sale.shop"),
]

HARD_SPAM = [
    T("sale_impersonation", 1, FLASH_SUBJ, FLASH_BODY,
      "copy of a {retailer} sale email whose shop link goes to look-alike {shop_host}", "hello@news.{shop_host}",
      slots={"shop_host": twin("www.{retailer_domain}")}),
    T("points_impersonation", 1, POINTS_SUBJ, POINTS_BODY,
      "copy of a {retailer} rewards email whose link goes to look-alike {shop_host}", "rewards@{shop_host}",
      slots={"shop_host": twin("www.{retailer_domain}")}),
]

SLOTS.update({
    "product2": ["gift sets", "the winter range", "our new mugs", "limited-edition prints", "travel sizes"],
    "lbs": ["15", "20", "30", "35"],
    "weeks": ["2", "3", "4"],
    "wfh": ["3,000", "5,000", "7,500", "10,000", "2,500"],
    "testimonial": ['"I lost {lbs} lbs and feel 10 years younger!" - {ofirst}, {city}',
                    '"My doctor couldn\'t believe the results!" - {ofirst} from {city}',
                    '"Best thing I have ever bought. I cried when I saw the scales." - {ofirst}'],
    "testimonial_money": ['"I paid off my mortgage in 6 months!" - {ofirst}, {city}',
                          '"I made ${wfh} in my first week. Unbelievable." - {ofirst} from {city}',
                          '"I quit my job after 2 months." - {ofirst}, {city}'],
    "prize": ["brand-new smartphone", "cordless vacuum cleaner", "$500 supermarket gift card", "65-inch smart TV", "stand mixer"],
})

DOMAIN = DomainSpec(
    name="marketing",
    description="genuine promotional newsletters vs spam and scam offers",
    slots=SLOTS,
    templates=LEGIT + SPAM + as_hard(HARD_LEGIT + HARD_SPAM),
    hard_share=0.12,
    words=(45, 150),
)
