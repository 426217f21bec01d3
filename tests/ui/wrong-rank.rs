bp::network! {
    struct Net {
        input x: [784];
        let c = conv2d(x, 4, kernel = 3);
        let out = linear(flatten(c), 2);
        output out;
    }
}

fn main() {}
