"""Personal data in free text: one detector built on the parsers' own rules
(`detect`), the token vault that keeps it out of Rasa (`vault`) and the scrub of
Rasa's tracker store (`tracker_scrub`)."""
