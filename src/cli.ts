#!/usr/bin/env node
// The executable: everything lives in main.ts so tests can drive it without a process.
import { main } from './main.ts';

void main(process.argv.slice(2));
