"""Selector: the plan `lowres.selector.recommend` gives for one task and environment (a plan, not a measurement)."""
from lowres.summary import Headline

HEADLINE = Headline(quality=(), strategy=lambda params: None, task="plan", model=lambda params: None,
                    measured=False)
