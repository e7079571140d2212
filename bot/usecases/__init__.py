"""Use cases: what the product does when a customer writes, staff answer, take over or resolve,
and when follow-ups fall due. Called by listeners and jobs; they call the agent, the toolkit
and storage."""
