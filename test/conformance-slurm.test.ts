import { conformance } from './conformance.js';

conformance('slurm');
