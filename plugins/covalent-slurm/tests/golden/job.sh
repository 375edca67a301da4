#!/bin/bash
#SBATCH -N 1
#SBATCH --cpus-per-task=4
#SBATCH --exclusive
#SBATCH --gres=gpu:1
#SBATCH --mem=8G
#SBATCH --parsable
#SBATCH --partition=gpu
#SBATCH --time=01:00:00

export GREETING='it'"'"'s $(not run)'
export OMP_NUM_THREADS=4
module load cuda/12
eval "$(conda shell.bash hook)"
conda activate 'my env'
srun -G 4 -c 8 --cpu-bind=cores -n 4 nsys profile --stats=true python3 runner.py payload outcome
status=$?
echo done
exit "$status"
