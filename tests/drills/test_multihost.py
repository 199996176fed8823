"""Drill: multi-process runs on 127.0.0.1 (CPU collectives over gloo), a GAN.

- 4 processes x 2 devices train, checkpoint, are all killed (kill -9 of every process), and
  are started again: the run ends where one process with 8 devices ends.
- One process killed alone (a worker, or the coordinator, process 0): every other process
  exits with one line within a bounded time (GENLAB_PEER_TIMEOUT, 10 s here) instead of
  waiting in a collective.
- SIGINT sent to one process alone: all of them stop at the same step, after one checkpoint,
  with exit 130.
"""
import signal
import time

import pytest

import drill_lib as drills

NAME = 'gan_mnist'
RUN = {'num_train_steps': 60, 'log_every_steps': 1, 'checkpoint_every_steps': 10,
       'eval_every_steps': 30, 'eval.sample_metrics': (), 'eval.test_sample_metrics': ()}
PEER_TIMEOUT = 10


@pytest.fixture(scope='module')
def one_process(data_dir, tmp_path_factory):
  """The uninterrupted run on 1 process x 8 devices."""
  workdir = str(tmp_path_factory.mktemp('one_process'))
  done = drills.run(NAME, workdir, RUN, extra_env={
      'XLA_FLAGS': '--xla_force_host_platform_device_count=8'})
  assert done.returncode == 0, done.stderr[-3000:]
  return drills.final_state(NAME, RUN, workdir)


def _wait_for_checkpoint(workdir, procs, step):
  drills.wait_until(lambda: step in drills.checkpoint_steps(workdir), procs[0], 600,
                    f'checkpoint {step}')


@pytest.mark.slow
def test_4_processes_killed_and_resumed_match_1_process(one_process, tmp_path):
  workdir = str(tmp_path / 'run')
  procs = drills.start_processes(NAME, workdir, RUN, 4)
  _wait_for_checkpoint(workdir, procs, 20)
  drills.wait_until(lambda: max(drills.logged_steps(workdir)) >= 25, procs[0], 600, 'step 25')
  for p in procs:
    p.kill()
  drills.finish(procs)
  killed_at = max(drills.logged_steps(workdir))
  kept = drills.checkpoint_steps(workdir)
  ended = drills.finish(drills.start_processes(NAME, workdir, RUN, 4))
  assert all(code == 0 for code, _ in ended), [err[-2000:] for _, err in ended]
  state = drills.final_state(NAME, RUN, workdir)
  difference = drills.max_difference(state, one_process)
  drills.report('multi-host: 4 x 2 devices killed, resumed',
                f'all 4 killed after step {killed_at} (checkpoints {kept}); resumed to step 60: '
                f'{"bit-identical to" if drills.identical(state, one_process) else "max |diff| "}'
                f'{"" if drills.identical(state, one_process) else f"{difference:.1e} from"} '
                '1 process x 8 devices')
  assert difference < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize('victim', [2, 0], ids=['a worker', 'the coordinator'])
def test_one_process_killed_alone(victim, data_dir, tmp_path):
  workdir = str(tmp_path / 'run')
  procs = drills.start_processes(NAME, workdir, {**RUN, 'num_train_steps': 100_000}, 4,
                                 extra_env={'GENLAB_PEER_TIMEOUT': str(PEER_TIMEOUT)})
  _wait_for_checkpoint(workdir, procs, 10)
  killed = time.time()
  procs[victim].kill()
  others = [p for i, p in enumerate(procs) if i != victim]
  ended = drills.finish(others, timeout=PEER_TIMEOUT + 60)
  seconds = time.time() - killed
  drills.finish([procs[victim]])
  for code, err in ended:
    errors = [l for l in drills.lines(err) if l.startswith('genlab: error:')]
    assert code == 2 and len(errors) == 1, err[-3000:]
    assert 'Re-run the same command on every process' in errors[0]
    assert 'Traceback' not in err
  assert seconds < PEER_TIMEOUT + 30
  first = [l for l in drills.lines(ended[0][1]) if l.startswith('genlab: error:')][0]
  drills.report(f'multi-host: {"coordinator" if victim == 0 else "worker"} killed alone',
                f'the other 3 exited 2 within {seconds:.1f} s (peer timeout {PEER_TIMEOUT} s), '
                f'one line: "{first[15:90]}..."')


@pytest.mark.slow
def test_sigint_to_one_process_stops_all_at_one_step(one_process, tmp_path):
  workdir = str(tmp_path / 'run')
  procs = drills.start_processes(NAME, workdir, RUN, 4)
  _wait_for_checkpoint(workdir, procs, 10)
  procs[3].send_signal(signal.SIGINT)
  ended = drills.finish(procs)
  stops = []
  for code, err in ended:
    assert code == 130, err[-3000:]
    stops += [l for l in drills.lines(err) if l.startswith('genlab: stopped by SIGINT at step')]
  assert len(stops) == 4 and len(set(stops)) == 1, stops
  stopped_at = drills.checkpoint_steps(workdir)[-1]
  assert f'at step {stopped_at},' in stops[0]
  resumed = drills.finish(drills.start_processes(NAME, workdir, RUN, 4))
  assert all(code == 0 for code, _ in resumed)
  difference = drills.max_difference(drills.final_state(NAME, RUN, workdir), one_process)
  drills.report('multi-host: SIGINT to process 3 alone',
                f'all 4 stopped at step {stopped_at} with its checkpoint, exit 130; resumed: '
                f'max |diff| {difference:.1e} from 1 process x 8 devices')
  assert difference < 1e-5
