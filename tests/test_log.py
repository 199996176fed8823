"""Libraries' logs: routine chatter and second reports of an error genlab reports itself are
dropped; anything else still reaches the user."""
import asyncio
import logging

from genlab import log


def test_asyncio_leftovers_of_a_failed_write_are_dropped_and_other_errors_kept(caplog):
  log.quiet_libraries()
  logger = logging.getLogger('asyncio')
  with caplog.at_level(logging.ERROR):
    for kind in ('Task', 'Future'):
      logger.error(f'{kind} exception was never retrieved\nfuture: <{kind} finished '
                   "exception=ValueError('No space left on device')>")
    logger.error('Exception in callback something_else()')
  assert [r.getMessage() for r in caplog.records] == ['Exception in callback something_else()']


def test_a_task_whose_error_nobody_read_is_silent(caplog):
  """The real thing: asyncio logs an unread Task error when the task is collected."""
  log.quiet_libraries()

  async def fail():
    raise ValueError('No space left on device')

  async def main():
    asyncio.ensure_future(fail())
    await asyncio.sleep(0.01)

  with caplog.at_level(logging.ERROR):
    asyncio.run(main())
    import gc  # pylint: disable=g-import-not-at-top
    gc.collect()
  assert not [r for r in caplog.records if 'never retrieved' in r.getMessage()]
