"""genlab entry point.

  python run.py --config configs/vae_mnist.py [--workdir DIR] [--mode train|eval|sample]
  python run.py --config configs/stylegan2_mnist.py --workdir DIR --mode=edit [--edit_* ...]
  python run.py --config configs/vae_mnist.py --sweep [--sweep_parallel=N] [--workdir DIR]
"""
from absl import flags

from genlab import cli

_WORKDIR = flags.DEFINE_string('workdir', None, 'Run directory (default runs/<config name>).')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'sample', 'edit', 'sweep_report'],
                          'What to do (edit: StyleGAN2 latent editing into WORKDIR/edit/; '
                          'sweep_report: the table and plot of a --sweep workdir).')
_NUM_SAMPLES = flags.DEFINE_integer('num_samples', 64, '--mode=sample: how many samples.')
_OUTPUT = flags.DEFINE_string('output', None, '--mode=sample: the .npz file to write '
                              '(default WORKDIR/samples.npz).')
# Language models only (None = the config's sample.* value).
_PROMPT = flags.DEFINE_string('prompt', None, '--mode=sample: the text to continue.')
_TEMPERATURE = flags.DEFINE_float('temperature', None, '--mode=sample: softmax temperature '
                                  '(> 0; default 1.0).')
_LENGTH = flags.DEFINE_integer('length', None, '--mode=sample: tokens to generate.')
_TOP_K = flags.DEFINE_integer('top_k', None, '--mode=sample: sample among the k most likely '
                              'tokens (0 = all).')
_TOP_P = flags.DEFINE_float('top_p', None, '--mode=sample: nucleus sampling mass (1 = all).')

# Translation between two domains only (CycleGAN): which way --mode=sample translates.
_DIRECTION = flags.DEFINE_enum('direction', None, ['a_to_b', 'b_to_a'], '--mode=sample: '
                               'translate the test images of domain a into b, or b into a '
                               '(default: the config\'s sample.direction).')

# StyleGAN2 latent editing, --mode=edit (genlab/edit.py; README "Latent editing"). None: the
# default of genlab.edit.Options.
_EDIT_METHOD = flags.DEFINE_enum('edit_method', None, ['sefa', 'ganspace'], '--mode=edit: '
                                 'SeFa (closed form) or GANSpace (PCA of w) directions '
                                 '(default sefa).')
_EDIT_DIRECTIONS = flags.DEFINE_integer('edit_directions', None, '--mode=edit: a strip for '
                                        'each of the top K directions (default 5).')
_EDIT_INDEX = flags.DEFINE_integer('edit_index', None, '--mode=edit: the direction the '
                                   'projections are edited along (default 0, the top one).')
_EDIT_LAYERS = flags.DEFINE_string('edit_layers', None, '--mode=edit: START:STOP, the ws '
                                   'layers an edit moves (and SeFa factorises); default all.')
_EDIT_STRENGTHS = flags.DEFINE_list('edit_strengths', None, '--mode=edit: edit strengths in '
                                    'units of sigma (default -3,-2,-1,0,1,2,3).')
_EDIT_SEEDS = flags.DEFINE_integer('edit_seeds', None, '--mode=edit: latents per strip and '
                                   'grid (default 4).')
_EDIT_PSIS = flags.DEFINE_list('edit_psis', None, '--mode=edit: the truncation grid\'s psis '
                               'in [0, 1] (default 1,0.7,0.5,0.2,0).')
_EDIT_SAMPLES = flags.DEFINE_integer('edit_samples', None, '--mode=edit: samples of w for '
                                     'GANSpace\'s PCA, the sigmas and the projection\'s start '
                                     '(default 10000).')
_PROJECT = flags.DEFINE_string('project', None, '--mode=edit: an image file (PNG) to project '
                               'into W / W+ instead of test images.')
_PROJECT_COUNT = flags.DEFINE_integer('project_count', None, '--mode=edit: project the first '
                                      'N test images (default 4; 0: no projection).')
_PROJECT_STEPS = flags.DEFINE_integer('project_steps', None, '--mode=edit: optimisation steps '
                                      'of the projection (default 1000).')
_PROJECT_SPACE = flags.DEFINE_enum('project_space', None, ['w', 'w+'], '--mode=edit: one w for '
                                   'every layer, or one per layer (default w).')
_PROJECT_RESIZE = flags.DEFINE_bool('project_resize', None, '--mode=edit: resize a --project '
                                    'image of another size to the model\'s (default: refuse).')

# Sweeps (genlab/sweep/; README "Sweeps").
_SWEEP = flags.DEFINE_bool('sweep', False, 'Run every trial of the config\'s get_sweep(h) (or '
                           'of --sweep_grid), each in WORKDIR/<trial name>; re-running resumes.')
_SWEEP_GRID = flags.DEFINE_multi_string('sweep_grid', [], 'KEY=V1,V2,...: trials on the command '
                                        'line instead of get_sweep; several make a grid.')
_SWEEP_PARALLEL = flags.DEFINE_integer('sweep_parallel', 0, 'Trials at a time (0: 1 locally, as '
                                       'many as the resources allow on Ray).')
_SWEEP_METRIC = flags.DEFINE_string('sweep_metric', None, 'Rank trials by this metric, e.g. '
                                    'test/nll (default: the config\'s SWEEP_METRIC).')
_SWEEP_GOAL = flags.DEFINE_enum('sweep_goal', None, ['min', 'max'], 'Whether the best trial has '
                                'the lowest or highest metric (default: SWEEP_GOAL, else min).')
_SWEEP_RETRY = flags.DEFINE_bool('sweep_retry_failed', False, 'Run failed trials again.')
_SWEEP_BACKEND = flags.DEFINE_enum('sweep_backend', 'local', ['local', 'ray'], 'Where trials '
                                   'run: processes here, or Ray (Tune) tasks.')
_RAY_ADDRESS = flags.DEFINE_string('ray_address', None, 'HOST:PORT of a Ray head (default: a '
                                   'Ray instance started on this machine).')
_CPUS = flags.DEFINE_float('sweep_cpus_per_trial', 1, 'Ray: CPUs reserved for each trial.')
_GPUS = flags.DEFINE_float('sweep_gpus_per_trial', 0, 'GPUs for each trial (Ray: may be a '
                           'fraction; local: whole GPUs, each parallel trial its own).')
_SCHEDULER = flags.DEFINE_enum('sweep_scheduler', 'fifo', ['fifo', 'asha'], 'Ray: asha stops '
                               'the worst trials early on the validation metric.')
_ASHA_GRACE = flags.DEFINE_integer('asha_grace_steps', 0, 'ASHA: steps before a trial may be '
                                   'stopped (0: eval_every_steps).')
_ASHA_FACTOR = flags.DEFINE_integer('asha_reduction_factor', 2, 'ASHA: keep 1/factor per rung.')


def main(_argv):
  cli.execute(mode=_MODE.value, workdir=_WORKDIR.value, num_samples=_NUM_SAMPLES.value,
              output=_OUTPUT.value, direction=_DIRECTION.value,
              edit_options={'method': _EDIT_METHOD.value,
                            'num_directions': _EDIT_DIRECTIONS.value,
                            'index': _EDIT_INDEX.value, 'layers': _EDIT_LAYERS.value,
                            'strengths': _EDIT_STRENGTHS.value, 'num_seeds': _EDIT_SEEDS.value,
                            'psis': _EDIT_PSIS.value, 'num_w_samples': _EDIT_SAMPLES.value,
                            'project': _PROJECT.value, 'project_count': _PROJECT_COUNT.value,
                            'project_steps': _PROJECT_STEPS.value,
                            'project_space': _PROJECT_SPACE.value,
                            'project_resize': _PROJECT_RESIZE.value},
              text_options={'prompt': _PROMPT.value, 'temperature': _TEMPERATURE.value,
                            'length': _LENGTH.value, 'top_k': _TOP_K.value,
                            'top_p': _TOP_P.value},
              sweep=_SWEEP.value, sweep_options=dict(
                  parallel=_SWEEP_PARALLEL.value, grid=tuple(_SWEEP_GRID.value),
                  retry_failed=_SWEEP_RETRY.value, metric=_SWEEP_METRIC.value,
                  goal=_SWEEP_GOAL.value, backend=_SWEEP_BACKEND.value,
                  ray_address=_RAY_ADDRESS.value, cpus_per_trial=_CPUS.value,
                  gpus_per_trial=_GPUS.value, scheduler=_SCHEDULER.value,
                  asha_grace_steps=_ASHA_GRACE.value, asha_reduction_factor=_ASHA_FACTOR.value))


if __name__ == '__main__':
  cli.run_main(main)
