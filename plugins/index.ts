/**
 * The built-in environment: every plugin folder and site extension shipped
 * with hisbridge. A plugin's route name is its folder name. Each platform
 * family's error catalogue (plugins/<family>/errors.ts) is registered before
 * its extension; a code owned twice refuses the start.
 */
import { Registry } from '../core/sdk.js';
import log from './log/index.js';
import reply from './reply/index.js';
import http from './http/index.js';
import map from './map/index.js';
import hl7 from './hl7/index.js';
import gdEhr from './gd-ehr/index.js';
import { gdEhrErrors } from './gd-ehr/errors.js';
import gdEhrAuthorize from './gd-ehr-authorize/index.js';
import gdEhrViewer from './gd-ehr-viewer/index.js';
import recognition from './recognition/index.js';
import { recognitionErrors } from './recognition/errors.js';
import recognitionUpload from './recognition-upload/index.js';
import recognitionCheck from './recognition-check/index.js';
import sensitiveGuard from './sensitive-guard/index.js';
import kafkaPublish from './kafka-publish/index.js';
import sourceMllp from './source-mllp/index.js';
import sourceKafka from './source-kafka/index.js';
import sourceHttp from './source-http/index.js';
import sourceFile from './source-file/index.js';
import { fileSourceErrors } from './source-file/errors.js';
import sourceDatabase from './source-database/index.js';
import mllp, { mllpReceiver } from './mllp/index.js';

export function builtinRegistry(): Registry {
  return new Registry()
    .plugin(log)
    .plugin(reply)
    .plugin(http)
    .plugin(map)
    .plugin(hl7)
    .errors(gdEhrErrors)
    .extension(gdEhr)
    .plugin(gdEhrAuthorize)
    .plugin(gdEhrViewer)
    .errors(recognitionErrors)
    .extension(recognition)
    .plugin(recognitionUpload)
    .plugin(recognitionCheck)
    .plugin(sensitiveGuard)
    .plugin(kafkaPublish)
    .plugin(mllp)
    .extension(mllpReceiver)
    .source(sourceMllp)
    .source(sourceKafka)
    .source(sourceHttp)
    .errors(fileSourceErrors)
    .source(sourceFile)
    .source(sourceDatabase);
}
