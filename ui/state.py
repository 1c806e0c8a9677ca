"""Every ``st.session_state`` and widget key the app uses, in one place.

Pages import names from here instead of typing strings, so two pages can
never collide on a key and tests can drive a widget by the same constant.
Keys are prefixed with their page.
"""

# --------------------------------------------------------------------------- shared
#: Dataset fingerprint last chosen on any page; Compare/Predict/Home start from it.
CURRENT_DATASET = "current_dataset"

# --------------------------------------------------------------------------- access (ui/access.py)
ACCESS_PREDICT_WINDOW = "access_predict_window"  # this session's recent prediction times (rate limit)
ACCESS_VISITOR_LABEL = "access_visitor_label"    # how an anonymous visitor is named to others
ACCESS_CHARGED_PHOTOS = "access_charged_photos"  # photo digests already counted against the budget

# --------------------------------------------------------------------------- Home
HOME_DATASET = "home_dataset"

# --------------------------------------------------------------------------- Train
TRAIN_SOURCE = "train_source"            # radio: demo | data root | upload
TRAIN_DEMO_PER_CLASS = "train_demo_per_class"
TRAIN_DATA_PATH = "train_data_path"      # selectbox of entries under the data root
TRAIN_UPLOAD = "train_upload"            # file_uploader (.npz / .zip)
TRAIN_MODELS = "train_models"            # multiselect
TRAIN_EPOCHS = "train_epochs"
TRAIN_WEIGHTS = "train_weights"          # segmented control: imagenet | none
TRAIN_IMAGE_SIZE = "train_image_size"
TRAIN_FINE_TUNE_LAYERS = "train_fine_tune_layers"
TRAIN_FINE_TUNE_EPOCHS = "train_fine_tune_epochs"
TRAIN_BATCH_SIZE = "train_batch_size"
TRAIN_PATIENCE = "train_patience"
TRAIN_CLASS_WEIGHT = "train_class_weight"
TRAIN_AUGMENT = "train_augment"
TRAIN_SEEDS = "train_seeds"
TRAIN_ENGINE = "train_engine"
TRAIN_RAY_ADDRESS = "train_ray_address"
TRAIN_PATH_TEXT = "train_path_text"      # text input: another path under the data root
TRAIN_LABELS = "train_labels"            # radio: own | ferplus (FER+ votes beside the file)
TRAIN_SEEN_STATUS = "train_seen_status"  # last job status the page rendered (to refresh on finish)
TRAIN_START = "train_start"              # button
TRAIN_CANCEL = "train_cancel"            # button
TRAIN_FLASH = "train_flash"              # one-shot message shown after a rerun
TRAIN_UPLOADED_PATH = "train_uploaded_path"  # where the last upload was saved (name, size) → path

# --------------------------------------------------------------------------- Compare
COMPARE_DATASET = "compare_dataset"
COMPARE_CM_MODE = "compare_cm_mode"      # counts | row-normalised
COMPARE_SMALL_METRIC = "compare_small_metric"
COMPARE_DOWNLOAD_PREFIX = "compare_download_"  # + kind + run id

# --------------------------------------------------------------------------- Predict
PREDICT_DATASET = "predict_dataset"
PREDICT_MODELS = "predict_models"          # multiselect, + dataset fingerprint
PREDICT_OTHER_MODELS = "predict_other_models"  # multiselect of other datasets' runs, + dataset fingerprint
PREDICT_SOURCE = "predict_source"        # upload | camera | sample
PREDICT_UPLOAD = "predict_upload"
PREDICT_CAMERA = "predict_camera"
PREDICT_SAMPLE = "predict_sample"
PREDICT_RESULT = "predict_result"        # (input digest, run ids) → PredictionResult
PREDICT_GRADCAM = "predict_gradcam"      # toggle
PREDICT_GRADCAM_FACE = "predict_gradcam_face"
PREDICT_BATCH_RESULT = "predict_batch_result"    # (files digest, run ids) → rows, skipped lines, counts
PREDICT_PHOTO_ROWS = "predict_photo_rows"        # (photo digest, run ids, face cap) → its rows (batch view)
PREDICT_RECENT = "predict_recent"                # the previous photo's result (photo digest, run ids) → result
PREDICT_BATCH_TABLE = "predict_batch_table"      # dataframe: one row per face
PREDICT_BATCH_DOWNLOAD = "predict_batch_download"  # download button: the table as CSV

# --------------------------------------------------------------------------- Video
VIDEO_DATASET = "video_dataset"
VIDEO_MODELS = "video_models"            # multiselect, + dataset fingerprint
VIDEO_OTHER_MODELS = "video_other_models"  # multiselect of other datasets' runs, + dataset fingerprint
VIDEO_SOURCE = "video_source"            # upload | sample
VIDEO_UPLOAD = "video_upload"
VIDEO_FPS = "video_fps"                  # samples per second of video time
VIDEO_SMOOTH = "video_smooth"            # moving-average window, in samples (1 = off)
VIDEO_ANNOTATE = "video_annotate"        # toggle: also write the annotated clip
VIDEO_ANALYSE = "video_analyse"          # button
VIDEO_CANCEL = "video_cancel"            # button
VIDEO_RESULT = "video_result"            # {"key", "result", "error", "csv", "annotated"} of the last analysis
VIDEO_CANCELLED = "video_cancelled"      # the key of an analysis the user cancelled

# --------------------------------------------------------------------------- Dataset
DATASET_CHOICE = "dataset_choice"        # selectbox: demo | data-root entry | a run's dataset | other path
DATASET_DEMO_PER_CLASS = "dataset_demo_per_class"
DATASET_DEMO_SIZE = "dataset_demo_size"
DATASET_PATH_TEXT = "dataset_path_text"
DATASET_LABELS = "dataset_labels"  # radio: the file's own labels | ferplus (when FER+ votes sit beside it)
DATASET_SAMPLE_SPLIT = "dataset_sample_split"
DATASET_SAMPLES_PER_CLASS = "dataset_samples_per_class"
