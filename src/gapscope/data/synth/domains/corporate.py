"""Workplace mail: meeting invites, IT and HR notices; phishing = credential harvesting
written in the same workplace voice (mailbox quota, fake SSO/VPN resets, shared files).

The tell in this domain is what the mail asks for (your password, your network
credentials, a "keep current password" click), not how it looks: real IT notices
are urgent too, and real MFA roll-outs also say "sign in with your credentials".
"""

from __future__ import annotations

from ..common import COMMON_SLOTS, lookalike, twin
from ..templating import DomainSpec, Template, as_hard, slug

SLOTS = {
    **COMMON_SLOTS,
    "company": [
        "Halvorsen Logistics", "Brightwater Analytics", "Kestrel Engineering", "Marlow & Finch",
        "Tidewell Health", "Orchard Lane Foods", "Corvid Systems", "Pinecrest Insurance",
        "Aldergate Partners", "Silverfen Media", "Northgate Pharma", "Blue Harbor Energy",
        "Quillstone Publishing", "Redfern Manufacturing", "Ashby Consulting", "Larchmont Retail",
    ],
    "corp_domain": lambda f: slug(f.get("company")) + f.choice([".com", ".co.uk", "group.com", ".eu"]),
    "fake_domain": lookalike("corp_domain"),
    "semail": lambda f: f"{f.get('sfirst').lower()}.{slug(f.get('slast'))}@{f.get('corp_domain')}",
    "wemail": lambda f: f"{f.get('first').lower()}.{slug(f.get('last'))}@{f.get('corp_domain')}",
    "dept": ["Finance", "Marketing", "Operations", "Legal", "Procurement", "Customer Success",
             "Engineering", "Facilities", "People", "Sales"],
    "title": ["Project Manager", "Senior Analyst", "Operations Lead", "HR Business Partner",
              "Head of Finance", "Office Manager", "Engineering Manager", "Programme Coordinator",
              "Team Lead", "Account Director"],
    "greeting": ["Hi {first},", "Hello {first},", "Hi all,", "Dear colleagues,", "Morning team,",
                 "Hi everyone,", "Hi {first}", "Team,"],
    "closing": ["Thanks,", "Best,", "Kind regards,", "Many thanks,", "Cheers,", "Regards,", "Thanks again,"],
    "sig": [
        "{sfirst} {slast}\n{title} | {dept}\n{company}",
        "{sfirst} {slast}\n{title}\n{company} | Tel +44 20 7946 {num4}",
        "{sfirst}\n\n{sfirst} {slast} | {title}\n{company}\nThis email and any attachments are confidential and intended solely for the addressee.",
        "{sfirst}\nSent from Outlook for iOS",
    ],
    "it_sign": [
        "IT Service Desk\n{company}\nService Desk ext. {num4} | https://servicedesk.{corp_domain}",
        "Kind regards,\nIT Operations\n{company}",
        "Thanks,\n{sfirst} {slast}\nIT Service Desk, {company}",
    ],
    "project": ["the Q3 budget review", "the vendor onboarding process", "the Aurora migration",
                "next quarter's hiring plan", "the warehouse system rollout", "the renewal for the {client} account",
                "the updated travel policy", "the internal audit findings", "the new intranet launch",
                "the {city} office move", "the customer satisfaction survey results", "the pricing proposal"],
    "client": ["Fenwick", "Trelawny", "Baxter & Co", "Morrow Health", "Ostrava Steel", "Kilnworth"],
    "meeting_kind": ["catch-up", "working session", "review meeting", "planning session", "check-in", "stand-up"],
    "duration": ["30-minute", "45-minute", "one-hour", "quick 20-minute", "90-minute"],
    "room": ["Meeting Room 3B", "the Ash room", "the boardroom", "Room 4.12", "the Willow room"],
    "prep_item": ["the latest numbers", "your team's estimates", "the draft slides", "any open risks",
                  "the supplier quotes", "feedback from the client"],
    "agenda1": ["Status of open actions", "Budget and timeline", "Resourcing for next month", "Risks and blockers"],
    "agenda2": ["Decisions needed from leadership", "Client feedback", "Next steps and owners", "Handover plan"],
    "system": ["Outlook", "the HR portal", "SharePoint", "the expenses system", "the VPN", "Teams",
               "the CRM", "the finance ledger", "the intranet", "the print service"],
    "update": ["the data migration is 80% complete", "testing is on track for the end of the month",
               "we have signed off the design with {client}", "the pilot group feedback was positive"],
    "update2": ["two vacancies are still open", "the supplier has confirmed delivery dates",
                "the budget variance is within 3%", "legal have approved the contract"],
    "update3": ["training sessions are booked for next week", "the go-live date is still {date}",
                "we are waiting on legal review of the contract", "the steering group meets on {weekday}"],
    "policy": ["Code of Conduct", "Information Security Policy", "Remote Working Policy", "Data Protection Policy"],
    "doc_name": ["Q3 Salary Adjustments.xlsx", "2024 Bonus Allocation.pdf", "Revised Org Chart.pdf",
                 "Staff Restructuring Plan.docx", "Updated Holiday Policy.pdf", "Invoice_{num5}.pdf",
                 "Performance Review Summary.pdf", "Payroll Changes {month}.xlsx"],
    "ldoc": ["the project plan", "the budget tracker", "the draft proposal", "the client deck",
             "the risk register", "the onboarding checklist"],
    "quota": ["2", "5", "10", "50"],
    "pct": ["96", "98", "99", "100", "97"],
    "days": ["3", "5", "7", "10", "14"],
    "phish_url": [
        "https://{fake_domain}/owa/validate?user={first_l}",
        "http://{fake_domain}/{tok}/login",
        "https://{fake_domain}/sso/{tok}",
        "https://{company:slug}.{fake_domain}/mailbox/upgrade",
    ],
    "phish_greet": ["Dear user,", "Dear {wemail},", "Hello {first},", "Dear staff member,", "Attention {wemail},", "Hi {first},"],
    "phish_sign": [
        "IT Helpdesk\n{company} Mail Administration",
        "Webmail Support Team",
        "System Administrator\n{company} IT Department",
        "Regards,\nIT Service Desk\n{company}",
        "Mail Server Team\nMessage ID: {num8}",
    ],
    "banner": ["CAUTION: This email originated from outside of the organization. Do not click links or open attachments unless you recognize the sender.",
               "[EXTERNAL SENDER]", "", "", ""],
}

T = Template

# Paragraphs shared between a normal template and its hard mirror in the other class:
# the mirror differs only in the host it links to or in what it finally asks for.
INVITE_SUBJ = ["{meeting_kind:cap} on {project} - {weekday} {time}", "Invitation: {meeting_kind} @ {weekday} {date} {time}",
               "Catch-up on {project}", "Agenda for {weekday}'s {meeting_kind}", "Updated invitation: {project}"]
INVITE_OPEN = "[I've|I have] [set up|booked|scheduled] a {duration} {meeting_kind} on {weekday} at {time} to [go over|discuss|review] {project}. [{room} is booked|We'll meet in {room}|It will be on Teams] and the details are in the calendar invite."
INVITE_PREP = "[Could you|Please] [bring|have ready] {prep_item} so we can [make a decision|agree next steps|close this out] [on the day|in the meeting]?"
INVITE_AGENDA = "Agenda:\n1. {agenda1}\n2. {agenda2}\n3. AOB"
INVITE_LINK = "[Join online|Agenda and papers|View the invitation]: https://{invite_host}/l/meetup/{tok}"
REQ_SUBJ = ["Quick question", "Are you around?", "Quick favour", "Re: {weekday}", "Before {time}?"]
REQ_ASK = "[Could you|Can you] {req_item} before {time}?"
REQ_OPEN = "[Are you around this afternoon?|Are you at your desk?|Do you have a minute today?|Sorry to chase.]"
UPDATE_SUBJ = ["Update: {project}", "Weekly status - {project}", "Re: {project}", "Quick update from {dept}"]
REPORT_LINK = "[The full report is on SharePoint|{ldoc:cap} is updated here|Details are on the project site]: https://{report_host}/sites/{dept:slug}/{tok}"
UPDATE_BODY = "Quick update on {project}:\n\n- {update}\n- [{update2}|the next milestone is {date}]\n- [{update3}|nothing is blocking at the moment]"
VPN_SUBJ = ["VPN re-enrolment required by {weekday}", "Important: update your remote access by {weekday}",
            "Action required: GlobalConnect VPN upgrade"]
VPN_BODY = "Following [a security upgrade|the migration to a new VPN gateway|an audit of remote access], all staff must re-enrol their GlobalConnect VPN profile before {weekday}. [Sign in|Log in] at {vpn_url} using your [domain username and password|network credentials], then [approve the prompt on your phone|download the updated profile]."
VPN_CLOSE = "Users who have not re-enrolled [will lose remote access|will be disconnected] [at midnight|after {hours} hours|on {date}]."
PW_SUBJ = ["Password expiry notice for {wemail}", "Your {company} password expires soon", "Password expiry reminder",
           "Action required: change your password by {date}"]
PW_OPEN = "The password for your {company} account {wemail} [will expire in {days} days|expires on {date}|is due to expire]."

LEGIT = [
    T("meeting_invite", 0, INVITE_SUBJ,
      ["{greeting}", INVITE_OPEN, (0.6, INVITE_PREP), (0.5, INVITE_AGENDA), (0.5, INVITE_LINK),
       (0.4, "If the time doesn't work, [let me know|drop me a note] and I'll [find another slot|move it]."),
       "{closing}\n{sig}"],
      "internal meeting invite, links only to the company's own hosts", "{semail}"),
    T("it_maintenance", 0,
      ["Planned maintenance: {system} - {weekday} {date}", "[IT Notice] {system} downtime this {weekday}",
       "Scheduled outage for {system}", "Reminder: {system} maintenance tonight"],
      ["[Dear colleagues,|Hi all,|Hello everyone,]",
       "[Please be aware that|This is a reminder that|As part of our regular updates,] {system} will be [unavailable|offline|in read-only mode] on {weekday} {date} between {time} and {time2} while we [apply security updates|upgrade the servers|migrate to new storage].",
       "No action is required from you. [Work saved before the window will not be affected.|Please save your work before the window starts.]",
       (0.6, "If you have problems after the window, raise a ticket on the Service Desk portal or call ext. {num4}."),
       "{it_sign}"],
      "routine internal IT maintenance notice, no action asked", "servicedesk@{corp_domain}"),
    T("hr_deadline", 0,
      ["Reminder: benefits enrolment closes {weekday}", "Action needed: complete your compliance training by {date}",
       "Open enrolment deadline {date}", "Please complete your annual review by {date}"],
      ["{greeting}",
       "[A reminder that|Just a reminder that|Please note that] [annual benefits enrolment|the mandatory {policy} training|the mid-year review cycle] [closes|must be completed] by {date}. [So far {pct}% of the {dept} team have completed it.|Thanks to everyone who has already done it.]",
       "You can find it in PeopleHub under My Tasks[ at https://peoplehub.{corp_domain}|]. [It takes about 20 minutes.|If you do nothing, your current choices roll over.|Your manager will get a reminder the following week.]",
       (0.5, "Questions? [Reply to this email|Contact your HR Business Partner|Drop into the {weekday} HR drop-in session]."),
       "{closing}\n{sfirst} {slast}\nPeople Team, {company}"],
      "HR deadline reminder pointing to the internal portal", "people@{corp_domain}"),
    T("expenses", 0,
      ["Timesheets due Friday", "Your expense claim EXP-{num5} has been approved", "{month} expenses - reminder",
       "Purchase order {num6} approved"],
      ["{greeting}",
       "[Just a reminder that timesheets for {month} need to be in by 5pm on Friday so payroll can run on time.|Your expense claim EXP-{num5} for {amount} has been approved by {sfirst} {slast} and will be paid with your {month} salary.|Purchase order {num6} for {amount} has been approved and sent to the supplier.]",
       (0.6, "[Late claims will be processed next month.|Please attach receipts for anything over £25.|Let Finance know if anything looks wrong.]"),
       "{closing}\n{sfirst}\nFinance Operations | {company}"],
      "internal finance admin, nothing requested beyond normal process", "finance@{corp_domain}"),
    T("project_update", 0, UPDATE_SUBJ,
      ["{greeting}", UPDATE_BODY, (0.5, REPORT_LINK),
       (0.5, "[I'll go through it at {weekday}'s {meeting_kind}.|Shout if you have questions.]"),
       "{closing}\n{sig}"],
      "internal project status update", "{semail}"),
    T("quick_request", 0, REQ_SUBJ,
      ["Hi {first},", REQ_OPEN + " " + REQ_ASK + " [I need it for the {client} call.|{sfirst2} asked for it in the {meeting_kind}.|I want to check the numbers before it goes out.|I'm in meetings all afternoon so email is best.]",
       (0.5, "[No rush if you're busy.|Happy to pick it up from your desk.|Thanks for sorting this.]"),
       "{closing}\n{sig}"],
      "short internal request from a colleague", "{semail}"),
    T("facilities", 0,
      ["Office notice: {office_event}", "Facilities update - {weekday} {date}", "{office_event} this {weekday}"],
      ["[Hi all,|Dear colleagues,|Hello everyone,]",
       "[Please note|A quick heads-up] that {office_event} on {weekday} {date} [from {time}|in the morning|all day]. [Please use the {side} entrance.|Desks on that floor will be unavailable.|The alarm will sound for about two minutes.]",
       (0.6, "[Sorry for any disruption.|Thanks for your patience.|Contact Facilities on ext. {num4} with any questions.]"),
       "Facilities Team\n{company}"],
      "office facilities notice", "facilities@{corp_domain}"),
]
HARD_LEGIT = [
    T("password_expiry_real", 0, PW_SUBJ,
      ["Hello {first},", PW_OPEN,
       "[To change it, press Ctrl+Alt+Delete on a company laptop and choose Change a password|You can change it from the self-service page at https://password.{corp_domain}], [before it expires|to avoid being locked out of email and Teams].",
       (0.6, "IT will never ask you to send your password by email."),
       "{it_sign}"],
      "genuine password-expiry reminder on the company's own host", "servicedesk@{corp_domain}"),
    T("vpn_reenrol_real", 0, VPN_SUBJ,
      ["{greeting}", VPN_BODY, VPN_CLOSE, "{it_sign}"],
      "genuine VPN re-enrolment on the company's own SSO host", "it-security@{corp_domain}",
      slots={"vpn_url": ["https://sso.{corp_domain}/vpn", "https://vpn.{corp_domain}/enrol", "https://myaccess.{corp_domain}"]}),
]
PHISH = [
    T("mailbox_quota", 1,
      ["Mailbox storage limit reached ({pct}%)", "Your mailbox is almost full", "Action required: mailbox quota exceeded",
       "Email quota warning for {wemail}", "Pending messages for {wemail}"],
      ["{banner}", "{phish_greet}",
       "Your mailbox has [exceeded|reached] [its storage limit|the quota set by your administrator] ({pct}% of {quota} GB used). [You will not be able to send or receive new messages|{num3} incoming messages are being held on the server] until you [validate your account|upgrade your quota|verify your mailbox].",
       "To [avoid losing|prevent the loss of] [important emails|pending messages], [click below|use the link below] and sign in with your {company} [email and password|network credentials] within {hours} hours:\n{phish_url}",
       (0.5, "Failure to validate will result in your account being [suspended|deactivated|permanently locked]."),
       "{phish_sign}"],
      "fake mailbox-quota notice asks for email password at {fake_domain}", "mailer-daemon@{fake_domain}"),
    T("keep_password", 1, PW_SUBJ + ["Keep your current password", "Final notice: password expiration"],
      ["{banner}", "{phish_greet}", PW_OPEN,
       "[You can keep your current password by confirming it below|To keep using your current password, validate it below|Confirm your password to keep it]:\n{phish_url}",
       "[If you do not confirm, you will be logged out of all devices.|Unconfirmed accounts will be locked at {time}.|Ignoring this notice will lead to loss of access to email and Teams.]",
       "{phish_sign}"],
      "'keep your current password' lure collects credentials at {fake_domain}", "no-reply@{fake_domain}"),
    T("vpn_reauth", 1, VPN_SUBJ + ["GlobalConnect access will be disabled"],
      ["{banner}", "{phish_greet}", VPN_BODY, VPN_CLOSE, "{phish_sign}"],
      "fake VPN re-enrolment asks for domain username and password on {fake_domain}", "vpn-admin@{fake_domain}",
      slots={"vpn_url": "{phish_url}"}),
    T("shared_document", 1,
      ["{sfirst} {slast} shared \"{doc_name}\" with you", "Document shared: {doc_name}", "You have a new secure document",
       "{sfirst} {slast} sent you a file"],
      ["{banner}",
       "{sfirst} {slast} ({semail}) has shared a [secure|protected|confidential] document with you:\n\n{doc_name}",
       "[To view the document, sign in with your {company} email account|This document is protected. Verify your email address and password to open it]:\n{phish_url}",
       "[This link will expire in {hours} hours.|The file will be available for 48 hours.|Do not share this link.]",
       (0.5, "{phish_sign}")],
      "fake shared-document page asks for email login at {fake_domain}", "sharing@{fake_domain}"),
    T("payroll_update", 1,
      ["Payroll: confirm your bank details before {date}", "Important update to your salary payment",
       "Action required: employee payroll verification"],
      ["{banner}", "{phish_greet}",
       "Payroll is moving to a new provider. To make sure your salary is paid on {date}, [confirm|update] your direct deposit details and employee login at {phish_url} before {weekday}.",
       "[Staff who do not verify may experience a delay in payment.|This must be completed by all employees, including those on leave.]",
       "[Regards,|Thank you,]\nPayroll Department\n{company}"],
      "fake payroll change harvests employee login and bank details via {fake_domain}", "payroll@{fake_domain}"),
    T("policy_ack", 1,
      ["Mandatory: acknowledge the updated {policy}", "Sign the new {policy} today", "HR notice - policy acknowledgement required"],
      ["{banner}", "{phish_greet}",
       "All employees must read and acknowledge the updated {policy} by end of day. [Log in through the HR portal link below with your network ID and password.|Use your {company} email and password to sign the document.]",
       "{phish_url}",
       "[Non-compliance will be reported to your line manager.|Employees who do not sign will have their access reviewed.]",
       "Human Resources\n{company}"],
      "fake HR acknowledgement collects network password via {fake_domain}", "hr-notice@{fake_domain}"),
]
HARD_PHISH = [
    T("invite_lookalike", 1, INVITE_SUBJ,
      ["{greeting}", INVITE_OPEN, (0.6, INVITE_PREP), (0.5, INVITE_AGENDA), INVITE_LINK, "{closing}\n{sig}"],
      "ordinary-looking invite whose link goes to look-alike host {invite_host}", "{sfirst:lower}.{slast:slug}@{twin_corp}",
      slots={"invite_host": twin("teams.{corp_domain}")}),
    T("bec_payment", 1, REQ_SUBJ + ["Urgent request"],
      ["Hi {first},", REQ_OPEN + " " + REQ_ASK + " [I'm in meetings all afternoon so email is best.|I'll explain later, please keep this between us for now.]",
       (0.5, "[I'll send you the details once you confirm.|Reply and I'll forward the invoice.]"),
       "{closing}\n{sfirst}\nSent from my iPhone"],
      "executive impersonation from an outside address asking for an urgent payment", "{sfirst:lower}.{slast:slug}.{company:slug}@{home_mail}",
      slots={"req_item": ["process a payment of {amount} to a new supplier", "arrange a transfer of {amount} for the {client} deal",
                          "process the payment for the {client} invoice"]}),
    T("update_lookalike", 1, UPDATE_SUBJ,
      ["{greeting}", UPDATE_BODY, REPORT_LINK,
       (0.5, "[I'll go through it at {weekday}'s {meeting_kind}.|Shout if you have questions.]"),
       "{closing}\n{sig}"],
      "status update whose document link is a credential page on look-alike host {report_host}", "{sfirst:lower}.{slast:slug}@{twin_corp}",
      slots={"report_host": twin("sharepoint.{corp_domain}")}),
]

SLOTS.update({
    "invite_host": "teams.{corp_domain}",
    "req_item": ["send me the latest version of {ldoc}", "share the figures for {client}", "process the payment for the {client} invoice",
                 "send me {ldoc}"],
    "twin_corp": twin("{corp_domain}"),
    "report_host": "sharepoint.{corp_domain}",
    "sfirst2": ["Priya", "Tom", "Julia", "Marcus", "Ines", "the finance team"],
    "amount": ["£{num4}.00", "£{num3}.{cc}", "${num5}", "€{num4}.{cc}"],
    "num3": lambda f: str(f.rng.randint(100, 999)),
    "cc": lambda f: f"{f.rng.randint(0, 99):02d}",
    "office_event": ["the fire alarm will be tested", "the third-floor kitchen will be closed for refurbishment",
                     "the car park will be resurfaced", "the lifts will be out of service",
                     "the building will be deep-cleaned", "the network switches will be replaced"],
    "side": ["north", "side", "rear", "Mill Street"],
})

DOMAIN = DomainSpec(
    name="corporate",
    description="workplace mail; phishing = credential harvesting in workplace style",
    slots=SLOTS,
    templates=LEGIT + PHISH + as_hard(HARD_LEGIT + HARD_PHISH),
    hard_share=0.1,
    words=(40, 140),
)
