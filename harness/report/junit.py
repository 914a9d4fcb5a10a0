"""junit.xml: one testsuite per scenario suite, one testcase per scenario, and a
`problems` testsuite with one failing testcase per problem."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from harness.report.summary import RunReport
from harness.run.runner import ScenarioReport


def junit(report: RunReport) -> str:
    suites = ET.Element("testsuites", name="tokenproof")
    by_suite: dict[str, list[ScenarioReport]] = {}
    for s in report.scenarios:
        by_suite.setdefault(s.scenario.suite, []).append(s)
    for name, items in by_suite.items():
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=name,
            tests=str(len(items)),
            failures=str(sum(s.status == "fail" for s in items)),
            errors=str(sum(s.status == "error" for s in items)),
        )
        for s in items:
            case = ET.SubElement(
                suite, "testcase", classname=name, name=s.scenario.name, time=f"{s.duration_s:.3f}"
            )
            if s.status == "fail":
                failure = ET.SubElement(
                    case, "failure", message="; ".join(v.invariant for v in s.violations)
                )
                failure.text = "\n".join(v.message for v in s.violations) + (
                    "\nreproduce: " + report.reproduce(s)
                )
            elif s.status == "error":
                error = ET.SubElement(case, "error", message=(s.error or "").splitlines()[0])
                error.text = s.error
    problems = report.problems
    if problems:
        suite = ET.SubElement(
            suites,
            "testsuite",
            name="problems",
            tests=str(len(problems)),
            failures=str(len(problems)),
        )
        for number, problem in enumerate(problems, start=1):
            case = ET.SubElement(
                suite, "testcase", classname="problems", name=f"{number}. {problem.title}"
            )
            failure = ET.SubElement(case, "failure", message=problem.headline)
            failure.text = "\n".join(
                [
                    f"{s.scenario}: {s.violation.invariant}: {s.violation.message}"
                    for s in problem.shown
                ]
                + ["reproduce: " + report.problem_reproduce(problem)]
            )
    return ET.tostring(suites, encoding="unicode")
