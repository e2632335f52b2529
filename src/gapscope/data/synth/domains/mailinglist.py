"""Developer and announcement mailing-list traffic: patch reviews, release
announcements, user questions, votes, all wrapped in quoted replies and list footers;
spam = predatory journals, crypto "airdrops", recruitment scams and fake list-admin
notices posted to the list.

Every message, spam or not, carries the list footer and a [list] subject tag, so
the footer is style, not signal; the tell is the absence of technical substance
and the presence of an off-topic offer.
"""

from __future__ import annotations

from ..common import COMMON_SLOTS, lookalike, twin
from ..templating import DomainSpec, Template, as_hard

PROJECTS = ["tessera", "lumenfs", "corvid", "glimmer", "opalkit", "stratus", "quillpy", "marrow", "fennel", "kestrel-db"]

SLOTS = {
    **COMMON_SLOTS,
    "project": PROJECTS,
    "list": ["{project}-dev", "{project}-users", "{project}-devel", "{project}-discuss"],
    "alist": "{project}-announce",
    "list_host": "lists.{project}.org",
    "real_lists_domain": "{project}.org",
    "fake_lists_domain": lookalike("real_lists_domain"),
    "dl_host": "downloads.{project}.org",
    "jobs_host": "jobs.{company:lower}.io",
    "footer": [
        "_______________________________________________\n{list} mailing list\n{list}@{list_host}\nhttps://{list_host}/mailman/listinfo/{list}",
        "--\nYou received this message because you are subscribed to the \"{list}\" group on Listhaven.\nTo unsubscribe, send an email to {list}+unsubscribe@listhaven.org.",
        "_______________________________________________\n{list} mailing list -- {list}@{list_host}\nTo unsubscribe send an email to {list}-leave@{list_host}",
    ],
    "version": lambda f: f"{f.rng.randint(0, 5)}.{f.rng.randint(0, 19)}.{f.rng.randint(0, 9)}",
    "version2": lambda f: f"{f.rng.randint(0, 5)}.{f.rng.randint(0, 19)}",
    "component": ["scheduler", "io", "parser", "cli", "docs", "build", "cache", "net", "storage", "config", "tests", "ci"],
    "patch_title": ["fix race when closing idle connections", "avoid double free in buffer pool",
                    "handle empty config files", "add --dry-run flag", "drop support for Python 3.8",
                    "speed up index rebuild by 30%", "make timeouts configurable", "fix off-by-one in range reader",
                    "use monotonic clock for retries", "document the plugin API"],
    "review_point": ["I think the lock needs to be taken before we check the refcount, otherwise two threads can both see zero.",
                     "Could you split the refactoring out into a separate commit? It makes bisecting easier.",
                     "This changes the public API, so it needs a deprecation note in NEWS.",
                     "The benchmark numbers look good, but can you also run them on ARM?",
                     "I'd rather not add another global here; can we pass it through the context instead?",
                     "Tests pass locally for me on Linux but fail on macOS with a timeout in test_{component}.",
                     "Looks good to me apart from the naming nit below."],
    "code": ["    if (pool->refcount == 0)\n        return -EBUSY;", "    timeout = cfg.get(\"retry_timeout\", 30)",
             "$ {project} build --jobs 4\nerror: could not find target 'default'", "-    start = time.time()\n+    start = time.monotonic()",
             "    for (i = 0; i <= len; i++)", "Traceback (most recent call last):\n  File \"{component}.py\", line {num3}, in load\nKeyError: 'path'"],
    "num3": lambda f: str(f.rng.randint(12, 899)),
    "error": ["a segfault on shutdown", "'connection reset by peer' under load", "a KeyError when the config is empty",
              "a 10x slowdown after upgrading", "build failures with the new compiler", "duplicate rows after a restart"],
    "os_env": ["Ubuntu 22.04, gcc 12", "macOS 14 on M2", "Debian 12, Python 3.11", "Windows 11 with WSL2", "Alpine in Docker",
               "Fedora 39, clang 17"],
    "change": ["new streaming API for large files", "{pct}% faster cold start", "support for ARM64 wheels",
               "a plugin system for custom {component} backends", "fixes for 14 reported bugs",
               "security fix for a path traversal in the {component} module", "improved error messages in the CLI",
               "removed the deprecated v1 config format"],
    "pct": ["20", "35", "40", "2x", "15"],
    "quote_open": ["On {weekday}, {date} {ofirst} {olast} wrote:", "{ofirst} {olast} <{ofirst:lower}@{home_mail}> writes:",
                   "On {date}, at {time}, {ofirst} {olast} wrote:", "Quoting {ofirst} {olast} ({date}):"],
    "olast": COMMON_SLOTS["last"],
    "dev_sign": ["{sfirst}", "-- \n{sfirst} {slast}", "Cheers,\n{sfirst}", "Thanks,\n{sfirst} {slast}", "{sfirst} ({project} maintainer)"],
    "journal": ["International Journal of Advanced Computing and Informatics", "Global Journal of Engineering Research",
                "World Academy of Science Letters", "American Journal of Software and Systems",
                "International Research Journal of Emerging Technologies"],
    "journal_abbr": ["IJACI", "GJER", "WASL", "AJSS", "IRJET"],
    "token": ["OSS", "DEVX", "GITC", "CODE", "FORK"],
    "scam_domain": lambda f: f"{f.choice(['claim', 'airdrop', 'rewards', 'dev'])}-{f.choice(['opensource', 'contributors', 'github', 'devfund'])}{f.choice(['.xyz', '.io', '.app', '.site'])}",
    "spam_free": ["gmail.com", "outlook.com", "yahoo.com", "protonmail.com", "mail.com"],
    "spam_money": ["$45/hour", "$3,000 a week", "$120 per task", "$800 a day"],
}

T = Template

# Shared bodies: the hard rows are these same messages pointing at a look-alike host.
ANN_SUBJ = ["[ANNOUNCE] {project} {version} released", "[{alist}] {project} {version} is out", "[ANN] {project} {version}"]
ANN_BODY = ["[Hi all,|Hello everyone,|Dear {project} users,]",
            "[We're pleased to announce|I'm happy to announce] the release of {project} {version}. [This is a bug-fix release and all users are encouraged to upgrade.|This release brings several new features.]",
            "Highlights:\n* {change}\n* {change2}\n* {change3}",
            "[Download|Tarballs and signatures|Release files]: https://{dl_host}/{version}/",
            (0.6, "Thanks to the {num2} contributors who made this release possible. Full changelog in NEWS."),
            "{dev_sign}", "{footer}"]
JOB_SUBJ = ["[{list}] [JOB] {company} is hiring a {project} engineer (remote)", "[{list}] Job: {project} maintainer wanted",
            "[{list}] [JOB] Remote {project} developer"]
JOB_BODY = ["[Hi all,|Hello,] [hope job posts are OK here, the list guidelines say they are once a month.|apologies if this is off-topic.]",
            "{company} uses {project} heavily in production and we're hiring a [senior engineer|maintainer] to work on the {component} layer, [upstream-first|with 50% of time on upstream work]. [Remote in Europe.|Fully remote, salary {salary}.]",
            "[Details and the application form|Apply here]: https://{jobs_host}/{project}",
            "{dev_sign}", "{footer}"]
LIST_SUBJ = ["[{list}] Action required: confirm your subscription", "[{list}] Your subscription will be disabled",
             "[{list}] Subscription verification required"]
LIST_BODY = ["[Dear subscriber,|Hello {list} member,|Hi all,]",
             "[Due to excessive bounces|Because we are moving the list to a new server], your membership of {list} must be re-confirmed within [24 hours|7 days]. To keep your subscription active, confirm at:\nhttps://{confirm_host}/mailman/confirm/{tok}",
             "[If you do not confirm, you will be removed from the list.|This is an automated message from the list server.]",
             "{list} list administrator", "{footer}"]
LEGIT = [
    T("patch_review", 0,
      ["[{list}] Re: [PATCH v{v}] {component}: {patch_title}", "[{list}] [PATCH v{v}] {component}: {patch_title}",
       "Re: [{list}] [PATCH] {component}: {patch_title}"],
      ["{quote_open}\n> [This patch|The attached series] [fixes|addresses] the {component} issue reported in #{num4}.\n> {review_point}",
       "[Thanks for the review.|Good catch, thanks.|Agreed.] [I've reworked it in v{v2} to|I'll send a v{v2} to] [move the check under the lock|split out the refactor|add a regression test]. {review_point2}",
       (0.6, "{code}"),
       (0.5, "[Signed-off-by: {sfirst} {slast} <{sfirst:lower}@{home_mail}>|CI is green on all platforms now.|Benchmarks are in the PR description.]"),
       "{dev_sign}", "{footer}"],
      "on-topic patch review on the project list", "{sfirst:lower}@{home_mail}"),
    T("release_announce", 0, ANN_SUBJ, ANN_BODY,
      "genuine release announcement", "{sfirst:lower}@{project}.org"),
    T("job_post", 0, JOB_SUBJ, JOB_BODY,
      "genuine job post by a named user of the project", "{sfirst:lower}@{company:lower}.io"),
    T("user_question", 0,
      ["[{list}] {error} after upgrading to {version}", "[{list}] Help: {error}", "Re: [{list}] {error}"],
      ["[Hi all,|Hello,|Hi list,]",
       "I'm seeing {error} when [running the {component} tests|loading a large dataset|starting the server with the default config]. [It started after upgrading to {version}.|I can reproduce it every time.]",
       "{code}",
       "Environment: {os_env}, {project} {version}. [Any ideas what I'm doing wrong?|Is this a known issue?|Happy to open a bug if this isn't expected.]",
       "{dev_sign}", "{footer}"],
      "user support question on the list", "{sfirst:lower}.{slast:slug}@{home_mail}"),
    T("vote_thread", 0,
      ["[{list}] [VOTE] Release {project} {version} (RC{v})", "Re: [{list}] [VOTE] Release {project} {version} RC{v}",
       "[{list}] [RESULT][VOTE] {project} {version}"],
      ["[{quote_open}\n> Please vote on releasing {project} {version} from RC{v}. The vote is open for 72 hours.|Please vote on releasing {project} {version}. Artifacts and checksums are at https://dist.{project}.org/dev/{version}-rc{v}/]",
       "+1 (binding)",
       "[Checked signatures and checksums, built from source on {os_env}, ran the test suite: all green.|Verified the tarball, ran the examples, and checked the LICENSE and NOTICE files.]",
       (0.5, "[One small thing for next time: the README still mentions the old {component} flag.|Nit: the release notes link 404s but that's not a blocker.]"),
       "{dev_sign}", "{footer}"],
      "release vote on the dev list", "{sfirst:lower}@{project}.org"),
    T("meeting_notes", 0,
      ["[{list}] Notes from the {weekday} community call", "[{list}] {project} sync notes {date}", "[{list}] Meeting minutes {date}"],
      ["[Hi all,|Hello everyone,]",
       "Notes from this week's call ({num2} attendees):",
       "- {version2} branch cut is planned for {date}\n- {ofirst} will look at the {component} regression\n- [we agreed to drop the old {component} backend|the CI migration is nearly done|docs sprint on {weekday}]",
       "[The recording is on the wiki.|Next call is in two weeks, same time.|Please add agenda items to the wiki page.]",
       "{dev_sign}", "{footer}"],
      "community meeting notes", "{sfirst:lower}@{home_mail}"),
]
HARD_LEGIT = [
    T("list_confirm_real", 0, LIST_SUBJ, LIST_BODY,
      "genuine list-admin notice: confirmation link on the list's own host {list_host}", "{list}-owner@{list_host}",
      slots={"confirm_host": "{list_host}"}),
]
SPAM = [
    T("predatory_cfp", 1,
      ["[{list}] Call for Papers - {journal} ({journal_abbr})", "[{list}] Invitation to publish in {journal_abbr}",
       "[{list}] Fast publication: {journal}"],
      ["Dear Esteemed Researcher,",
       "[Greetings from {journal_abbr}!|Hope this mail finds you in good health.] The {journal} invites you to submit your valuable research article for the upcoming issue. [We accept papers in all areas of computer science and engineering.|Your recent work is highly relevant to our scope.]",
       "Publication within 7 days. Article processing charge only USD {apc}. [Indexed in many international databases.|Certificate of publication will be provided.]",
       "Submit your paper to editor.{journal_abbr:lower}@{spam_free}",
       "Regards,\nDr. {ofirst} {olast}\nEditorial Office", "{footer}"],
      "predatory-journal spam posted to a developer list", "editor.{journal_abbr:lower}@{spam_free}"),
    T("airdrop", 1,
      ["[{list}] {token} airdrop for open-source contributors", "[{list}] Claim your contributor reward",
       "[{list}] You are eligible for the {token} developer grant"],
      ["[Hello {list} members,|Hi developers,|Dear contributor,]",
       "To thank the open-source community, the {token} Foundation is distributing {token} tokens to everyone who has contributed to projects like {project}. [Your share is worth about ${reward}.|Eligible developers receive up to ${reward}.]",
       "Connect your wallet and sign in with your code-hosting account to claim: https://{scam_domain}/claim",
       "[The claim window closes in 48 hours.|Unclaimed tokens will be burned on {date}.]",
       "{token} Foundation", "{footer}"],
      "crypto 'airdrop' posted to the list, wallet and login phishing at {scam_domain}", "grants@{scam_domain}"),
    T("recruit_scam", 1,
      ["[{list}] Remote coding job - {spam_money}", "[{list}] Earn {spam_money} testing software from home",
       "[{list}] Urgent hiring: developers needed"],
      ["[Hello,|Hi all,|Dear developer,]",
       "We are urgently hiring developers to [test apps|review code|label data] from home. Earn {spam_money}, no interview required, [start today|flexible hours]. [Training is provided after a one-time registration fee of $49.|Payment via crypto every week.]",
       "Send your full name, phone number and a copy of your ID to hr.{ofirst:lower}@{spam_free} to get started.",
       "HR Team", "{footer}"],
      "recruitment scam asking for ID and a registration fee", "hr.{ofirst:lower}@{spam_free}"),
    T("seo_offtopic", 1,
      ["[{list}] Boost your project's GitHub stars", "[{list}] Get 10,000 followers for your repo", "[{list}] Promote your open source project"],
      ["[Hi,|Hello {list},|Dear project owner,]",
       "Want more users for {project}? We offer [guaranteed GitHub stars|SEO and backlinks|social media promotion] starting at only $19. [Thousands of happy developers.|Fast results in 24 hours.|100% safe and undetectable.]",
       "Order now at https://{scam_domain}/promo or reply for a free quote.",
       "[Best regards,|Thanks,]\n{ofirst}", "{footer}"],
      "off-topic promotion spam on a developer list", "{ofirst:lower}.promo@{spam_free}"),
    T("fake_list_notice", 1, LIST_SUBJ + ["[{list}] Mailing list password expired"], LIST_BODY,
      "fake list-admin notice sends subscribers to look-alike host {fake_lists_domain}", "mailman@{fake_lists_domain}",
      slots={"confirm_host": "{fake_lists_domain}"}),
]
HARD_SPAM = [
    T("release_twin", 1, ANN_SUBJ, ANN_BODY,
      "release announcement copy whose download host {dl_host} is a look-alike", "{sfirst:lower}@{dl_host}",
      slots={"dl_host": twin("downloads.{project}.org")}),
    T("job_twin", 1, JOB_SUBJ, JOB_BODY,
      "job-post copy whose application form sits on look-alike host {jobs_host}", "{sfirst:lower}@{jobs_host}",
      slots={"jobs_host": twin("jobs.{company:lower}.io")}),
]

SLOTS.update({
    "v": ["2", "3", "4", "5"],
    "v2": ["3", "4", "5", "6"],
    "num2": lambda f: str(f.rng.randint(8, 140)),
    "change2": SLOTS["change"], "change3": SLOTS["change"],
    "review_point2": SLOTS["review_point"],
    "apc": ["99", "120", "150", "75"],
    "reward": ["1,200", "2,500", "4,000", "850"],
    "company": ["Fernwave", "Datamoor", "Kiteplane", "Brackenlabs", "Sundial", "Norrland"],
    "salary": ["€80-100k", "$140-170k", "£75-90k"],
})

DOMAIN = DomainSpec(
    name="mailinglist",
    description="developer and announcement list traffic vs spam posted to lists",
    slots=SLOTS,
    templates=LEGIT + SPAM + as_hard(HARD_LEGIT + HARD_SPAM),
    hard_share=0.08,
    words=(60, 200),
)
