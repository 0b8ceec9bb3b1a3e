"""Work: the four-phase plan, findings as work, triage, routing, criteria and gates."""
