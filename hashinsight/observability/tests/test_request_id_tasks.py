"""A task run in the caller's thread (eager: embedded mode, tests) leaves the caller's request id as it was."""

from celery import shared_task

from hashinsight.observability.context import current_request_id, request_id_var

seen = []


@shared_task(name="tests.note_request_id")
def note_request_id():
    seen.append(current_request_id())


def test_an_eager_task_logs_its_own_id_and_gives_the_callers_back(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    token = request_id_var.set("req-caller")
    try:
        note_request_id.apply(task_id="task-1")
        assert seen[-1] == "task-1"
        assert current_request_id() == "req-caller"
    finally:
        request_id_var.reset(token)
