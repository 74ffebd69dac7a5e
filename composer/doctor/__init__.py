"""`compose doctor`: what decides whether mail arrives, checked before the first send."""

from __future__ import annotations

import os
from collections.abc import Mapping

from composer.doctor.dkim_check import check_dkim
from composer.doctor.dmarc_check import check_dmarc, find_dmarc
from composer.doctor.dns import DEFAULT_TIMEOUT, DnsLookup, make_resolver
from composer.doctor.findings import DeliverabilityProblems, Finding
from composer.doctor.setup import Setup
from composer.doctor.spf_check import check_spf
from composer.doctor.urls import check_urls
from composer.project import Project

__all__ = ["DeliverabilityProblems", "Finding", "run_doctor"]


def run_doctor(
    project: Project, env: Mapping[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT
) -> list[Finding]:
    """Every finding about SPF, DKIM, DMARC and the public URLs of `project`, in that order."""
    env = os.environ if env is None else env
    setup = Setup(project.newsletter, DnsLookup(make_resolver(env, timeout)), env)
    dmarc = find_dmarc(setup)
    policy = dmarc.policy
    spf = check_spf(setup)
    dkim = check_dkim(setup, strict=policy is not None and policy.strict_dkim)
    return [
        *spf.findings,
        *dkim.findings,
        *check_dmarc(setup, dmarc, spf.authorised, dkim.aligned),
        *check_urls(project.newsletter),
    ]
