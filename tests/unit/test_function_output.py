"""devtools.function_output: an invocation's output is its own thread's, log lines and metrics alike
(a stray invocation in another thread once added a log line to the cost model's measurement)."""

from __future__ import annotations

import io
import logging
import threading

from devtools.function_output import captured, routed


def _log_in_another_thread(message: str) -> None:
    from ntp_webhooks.observability import logger

    thread = threading.Thread(target=lambda: logger.info(message))
    thread.start()
    thread.join()


def test_a_capture_holds_this_threads_log_lines_and_metrics_only() -> None:
    from ntp_webhooks.observability import logger

    with captured() as output:
        logger.info("mine")
        print('{"_aws": "a metric of mine"}')
        _log_in_another_thread("someone else's")
    assert "mine" in output.getvalue() and "a metric of mine" in output.getvalue()
    assert "someone else's" not in output.getvalue()


def test_a_copy_holds_this_threads_log_lines_only_and_the_streams_are_restored() -> None:
    from ntp_webhooks.observability import logger

    handlers = [h for h in logging.getLogger(logger.name).handlers if isinstance(h, logging.StreamHandler)]
    before = [h.stream for h in handlers]
    copy = io.StringIO()
    with routed(None, copy):
        logger.info("copied")
        _log_in_another_thread("not copied")
    assert "copied" in copy.getvalue() and "not copied" not in copy.getvalue()
    assert [h.stream for h in handlers] == before
