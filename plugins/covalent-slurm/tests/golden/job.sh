#!/bin/bash
#SBATCH --cpus-per-task=4
#SBATCH --exclusive
#SBATCH --gres=gpu:1
#SBATCH --mem=8G
#SBATCH --partition=gpu
#SBATCH --time=01:00:00

export GREETING='it'"'"'s $(not run)'
export OMP_NUM_THREADS=4
module load cuda/12
eval "$(conda shell.bash hook)"
conda activate 'my env'
srun --cpu-bind=cores python3 runner.py payload outcome
status=$?
echo done
exit "$status"
