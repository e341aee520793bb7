"""Soak: the whole assistant under traffic while its processes are killed.

Usage: python -m bench.soak [--short] [--people P] [--messages N]
       [--concurrency C] [--kills K] [--no-kills] [--database-url URL]
       [--redis-url URL] [--timeout S] [--keep] [--plant KIND]

Starts, on free 127.0.0.1 ports: two gateway processes (`python -m bot`) on one
PostgreSQL database created fresh for the run (dropped afterwards), Rasa (`rasa
run`, the trained model, SQL tracker store in that database, RedisLockStore with
a key prefix of its own) and the action server, with the real python-telegram-bot
and twilio clients pointed at the local fakes of Telegram's and Twilio's APIs
(threads of this process); e-mail codes go to the local outbox folder, where the
people read them. P people (half SMS, half Telegram) send N messages in all, each
waiting for the answer before the next message (closed loop, at most C people at
once): FAQ questions, the eligibility form, full registrations (the test people of
bot/verification/population.py, then synthetic people the local population
knows: e-mail code, NIK, KK, birth date, joining a batch, status) and handoffs
(ask for an agent, then BATAL). Webhooks are signed (Twilio RequestValidator,
Telegram secret token) and go to either gateway, retried on the other when one is
down. A Telegram message takes its id from the fake Bot API's count of the chat,
which the bot's replies share (as in a real private chat), so the gateway can
look up a reply cut off by a kill from the person's message; each send takes
the fake 0.2 s (`TELEGRAM_LATENCY`, half before the message is stored, half
after), and a gateway is killed while a send is in flight (waiting up to 10 s
for one), so the kill may cut it off. Some people send two messages at the
same instant, one to each gateway.

Meanwhile a gateway process, Rasa and the action server are each killed with
SIGKILL K times at random moments (`--short`: 500 messages, 50 people, K = 1;
a test of `make test`, `tests/soak/test_soak_short.py`), and restarted at once.
Afterwards, from the fakes, the mail folder and the database, it counts (and
fails, exit 1, unless each is 0): messages lost (no reply at all), replies
duplicated (one outbox row delivered twice at a fake),
side effects duplicated (e-mails per code request, e-mail codes per request,
applicants per NIK, batch memberships per applicant and against the batches'
counters, handoff tickets per request), and per-conversation order violations
(replies delivered in another order than stored, or a later message answered
before an earlier one). It prints the worst recovery time after each kind of kill
(from the kill to the first reply of each conversation that was waiting then) and
the throughput. Results go to results/soak/soak.json. Every wait is bounded;
traffic stays on 127.0.0.1.

`--plant duplicate|lost|order|email|ticket` plants one defect after the traffic
(a reply sent again to a fake provider, the replies to one person dropped, two
replies swapped, a code e-mail written twice, a second handoff ticket stored) to
show that the checks catch it.
"""
